"""In-process round-trip cost of `get` on the memory backend.

    hatch run bench:memory        (or: python benchmarks/memory.py [N])

Prints p50/p99 in microseconds for: a bare function call, a bare thread hand-off (the floor for
any design that runs the handler on another thread), zc-events `get` on the memory backend in its
default threaded mode, and with `inline=True`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable

from zc_events import Dispatcher, EventClient, HandlerRegistry, Request
from zc_events.backends.memory import MemoryBackend

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000


def add(request: Request) -> dict[str, int]:
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
    registry = HandlerRegistry({"add": add})
    threaded = EventClient(MemoryBackend(dispatcher=Dispatcher([registry])))
    inline = EventClient(MemoryBackend(dispatcher=Dispatcher([registry]), inline=True))
    request = _Data()
    rows = [
        ("bare function call add(request)", lambda: add(request)),  # type: ignore[arg-type]
        ("bare thread hand-off (lock ping-pong)", thread_handoff()),
        (
            "zc-events get, memory (threaded, default)",
            lambda: threaded.get("add", {"x": 1, "y": 1}),
        ),
        ("zc-events get, memory inline=True", lambda: inline.get("add", {"x": 1, "y": 1})),
    ]
    results = [(name, *measure(fn)) for name, fn in rows]
    base = results[0][1]
    print(f"{N} calls each, Python {sys.version.split()[0]}")
    print(f"{'':44} {'p50 µs':>9} {'p99 µs':>9} {'p50 / bare call':>16}")
    for name, p50, p99 in results:
        print(f"{name:44} {p50:9.2f} {p99:9.2f} {p50 / base:15.1f}x")
    threaded.close()
    inline.close()


if __name__ == "__main__":
    main()
