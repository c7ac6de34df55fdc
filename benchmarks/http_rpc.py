"""HTTP round trips: zc-events' ``http`` backend against a raw httpx + uvicorn echo floor.

    python benchmarks/http_rpc.py [--calls 3000] [--threads 8]

Both servers are uvicorn processes on 127.0.0.1 with one worker; both clients are one pooled
``httpx.Client`` with a kept-alive connection. The floor's server is a bare ASGI app that answers
every POST with a fixed JSON reply; zc-events' is ``zc-events worker --backend http`` serving a
handler that returns ``{"answer": x + y}``, once with the default handler threads and once with
``inline: true`` (sync handlers on the event loop, no thread hand-off). The difference is what
zc-events adds: the envelope, routing, validation, dispatch, the Response (the per-message log
line is off, as the floor logs nothing). The contenders run interleaved in blocks so that load
from other processes hits them alike. Prints p50/p90/p99 in ms, calls/s and the p50 ratio to the
floor (target ≤ 1.1), then the same with ``--threads`` client threads.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent
REPLY = b'{"data":{"answer":2},"has_errors":false,"errors":[]}'

FLOOR_APP = (
    f"REPLY = {REPLY!r}\n"
    """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": REPLY})
"""
)

HANDLERS = """
import zc_events

@zc_events.handler("bench.add")
def add(request):
    return {"answer": request.data["x"] + request.data["y"]}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def start(
    tmp: Path,
) -> tuple[list[subprocess.Popen[bytes]], dict[str, Callable[[], Any]], list[Any]]:
    (tmp / "floor_app.py").write_text(FLOOR_APP)
    (tmp / "bench_handlers.py").write_text(HANDLERS)
    floor_port, zc_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZC_EVENTS_")}
    floor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "floor_app:app",
            "--port",
            str(floor_port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=tmp,
        env=env,
    )

    def zc_worker(port: int, options: dict[str, Any]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "zc_events", "worker", "--backend", "http", "bench_handlers"],
            cwd=tmp,
            env={
                **env,
                "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"bind": f"127.0.0.1:{port}", **options}),
                "ZC_EVENTS_LOG_MESSAGES": "false",  # the floor logs nothing either
                "PYTHONPATH": str(tmp),
            },
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    inline_port = free_port()
    zc = zc_worker(zc_port, {})
    zc_inline = zc_worker(inline_port, {"inline": True})
    procs = [floor, zc, zc_inline]
    wait_port(floor_port, floor)
    wait_port(zc_port, zc)
    wait_port(inline_port, zc_inline)

    from zc_events import EventClient

    raw = httpx.Client(headers={"content-type": "application/json"})
    floor_url = f"http://127.0.0.1:{floor_port}/zc-events"
    body = json.dumps({"x": 1, "y": 1}).encode()

    def raw_call() -> Any:
        answer = raw.post(floor_url, content=body)
        return json.loads(answer.content)

    client = EventClient("http", routes={"*": f"http://127.0.0.1:{zc_port}"})

    inline_client = EventClient("http", routes={"*": f"http://127.0.0.1:{inline_port}"})

    def zc_call() -> Any:
        return client.get("bench.add", data={"x": 1, "y": 1}).data

    def zc_inline_call() -> Any:
        return inline_client.get("bench.add", data={"x": 1, "y": 1}).data

    assert zc_call() == zc_inline_call() == {"answer": 2}
    return (
        procs,
        {
            "raw httpx + uvicorn (floor)": raw_call,
            "zc-events http (threads)": zc_call,
            "zc-events http, inline": zc_inline_call,
        },
        [raw, client, inline_client],
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def sequential(contenders: dict[str, Callable[[], Any]], calls: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for call in contenders.values():
        for _ in range(200):
            call()
    block = 100
    for _ in range(calls // block):
        for name, call in contenders.items():
            times = samples[name]
            for _ in range(block):
                started = time.perf_counter()
                call()
                times.append(time.perf_counter() - started)
    return samples


def threaded(call: Callable[[], Any], threads: int, seconds: float) -> float:
    stop = time.monotonic() + seconds
    counts = [0] * threads

    def run(n: int) -> None:
        while time.monotonic() < stop:
            call()
            counts[n] += 1

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        procs, contenders, closers = start(Path(folder))
        try:
            print(f"load average before: {os.getloadavg()[0]:.2f}")
            samples = sequential(contenders, args.calls)
            floor_p50 = statistics.median(samples["raw httpx + uvicorn (floor)"])
            print(f"\nsequential get, {args.calls} calls each (ms)")
            print(
                f"{'contender':32} {'p50':>7} {'p90':>7} {'p99':>7} {'calls/s':>8} {'p50 ratio':>9}"
            )
            for name, times in samples.items():
                p50 = statistics.median(times)
                print(
                    f"{name:32} {p50 * 1e3:7.3f} {percentile(times, 0.9) * 1e3:7.3f} "
                    f"{percentile(times, 0.99) * 1e3:7.3f} {1 / p50:8.0f} {p50 / floor_p50:9.2f}"
                )
            print(f"\n{args.threads} threads sharing one client, 3 s each (calls/s)")
            rates = {name: threaded(call, args.threads, 3.0) for name, call in contenders.items()}
            floor_rate = rates["raw httpx + uvicorn (floor)"]
            for name, rate in rates.items():
                print(f"{name:32} {rate:8.0f} {rate / floor_rate:9.2f}")
            print(f"\nload average after: {os.getloadavg()[0]:.2f}")
        finally:
            for closer in closers:
                closer.close()
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)


if __name__ == "__main__":
    main()
