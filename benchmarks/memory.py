"""In-process round-trip cost of `get` on the memory backend.

    hatch run bench:memory        (or: python benchmarks/memory.py [N])

Prints p50/p99 in microseconds for: a bare function call, a bare thread hand-off (the floor for
any design that runs the handler on another thread), zc-events `get` on the memory backend in its
default mode (the handler runs inline on the caller's thread) and with `inline=False` (on a
worker thread, so the timeout can interrupt the wait), and `AsyncEventClient.get` on the native
async memory backend with a sync and an `async def` handler. Then the target: default `get`
p50 <= 25 us.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable

from zc_events import AsyncEventClient, Dispatcher, EventClient, HandlerRegistry, Request
from zc_events.backends.memory import AsyncMemoryBackend, MemoryBackend

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000


TARGET_P50_US = 25.0


def add(request: Request) -> dict[str, int]:
    return {"answer": request.data["x"] + request.data["y"]}


async def async_add(request: Request) -> dict[str, int]:
    return {"answer": request.data["x"] + request.data["y"]}


class _Data:
    data = {"x": 1, "y": 1}


def measure(fn: Callable[[], object], n: int = N) -> tuple[float, float]:
    for _ in range(min(n, 2000)):
        fn()
    samples = []
    clock = time.perf_counter
    for _ in range(n):
        t = clock()
        fn()
        samples.append(clock() - t)
    samples.sort()
    return samples[len(samples) // 2] * 1e6, samples[int(len(samples) * 0.99)] * 1e6


def measure_async(fn: Callable[[], Awaitable[object]], n: int = N) -> tuple[float, float]:
    async def run() -> tuple[float, float]:
        for _ in range(min(n, 2000)):
            await fn()
        samples = []
        clock = time.perf_counter
        for _ in range(n):
            t = clock()
            await fn()
            samples.append(clock() - t)
        samples.sort()
        return samples[len(samples) // 2] * 1e6, samples[int(len(samples) * 0.99)] * 1e6

    return asyncio.run(run())


def thread_handoff() -> Callable[[], None]:
    ping, pong = threading.Lock(), threading.Lock()
    ping.acquire()
    pong.acquire()

    def echo() -> None:
        while True:
            ping.acquire()
            pong.release()

    threading.Thread(target=echo, daemon=True).start()

    def call() -> None:
        ping.release()
        pong.acquire()

    return call


def main() -> None:
    registry = HandlerRegistry({"add": add, "async_add": async_add})
    default = EventClient(MemoryBackend(dispatcher=Dispatcher([registry])))
    threaded = EventClient(MemoryBackend(dispatcher=Dispatcher([registry]), inline=False))
    async_client = AsyncEventClient(AsyncMemoryBackend(dispatcher=Dispatcher([registry])))
    request = _Data()
    data = {"x": 1, "y": 1}
    rows = [
        ("bare function call add(request)", lambda: add(request)),  # type: ignore[arg-type]
        ("bare thread hand-off (lock ping-pong)", thread_handoff()),
        ("zc-events get, memory (default: inline)", lambda: default.get("add", data)),
        ("zc-events get, memory inline=False", lambda: threaded.get("add", data)),
    ]
    async_rows = [
        ("AsyncEventClient get, sync handler", lambda: async_client.get("add", data)),
        ("AsyncEventClient get, async handler", lambda: async_client.get("async_add", data)),
    ]
    results = [(name, *measure(fn)) for name, fn in rows]
    results += [(name, *measure_async(fn)) for name, fn in async_rows]
    base = results[0][1]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{N} calls each, Python {sys.version.split()[0]}, load average {load}")
    print(f"{'':44} {'p50 µs':>9} {'p99 µs':>9} {'p50 / bare call':>16}")
    for name, p50, p99 in results:
        print(f"{name:44} {p50:9.2f} {p99:9.2f} {p50 / base:15.1f}x")
    default_p50, threaded_p50 = results[2][1], results[3][1]
    verdict = "met" if default_p50 <= TARGET_P50_US else "MISSED"
    print(
        f"default get p50 {default_p50:.2f} µs = {default_p50 / TARGET_P50_US:.2f}x the "
        f"{TARGET_P50_US:g} µs target ({verdict}); inline=False / default = "
        f"{threaded_p50 / default_p50:.1f}x"
    )
    default.close()
    threaded.close()
    asyncio.run(async_client.aclose())


if __name__ == "__main__":
    main()
