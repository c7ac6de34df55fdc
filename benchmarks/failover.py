"""Fail-over window and quorum vs classic ``get`` latency on the local three-node cluster.

    python benchmarks/failover.py [--calls 500]

Needs ``scripts/rabbitmq-cluster.sh`` (started here when it is not running, and then stopped at
the end). In one run:

1. ``get`` p50/p90 (ms) against a worker on a quorum service queue and on a classic one, the
   calls interleaved in blocks so machine load hits both alike, and the quorum/classic ratio.
2. The fail-over window: a client streams sequential ``get`` and ``post_no_wait`` calls, with
   all three URLs and quorum queues, while the node it is connected to is killed (``kill -9``),
   then the node the worker is on. The window is the seconds from the kill to the end of the
   first successful call that started after it (target: 5 s or less).

Every queue and exchange it creates has a unique name and is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from zc_events import EventClient, PublishError, RequestTimeout, Settings
from zc_events.testing import run_worker
from zc_events_rabbitmq.testing import delete_broker_objects

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "rabbitmq-cluster.sh"
PORTS = (5681, 5682, 5683)
URLS = [f"amqp://guest:guest@127.0.0.1:{port}/%2F" for port in PORTS]
HANDLERS = "zc_events.testing.handlers"
TIMEOUT = 5.0


def cluster(*args: str) -> None:
    subprocess.run(["bash", str(SCRIPT), *args], check=True, capture_output=True, timeout=180)


def up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


class Service:
    """A service with a worker process on the cluster (worker prefers node 2)."""

    def __init__(self, stack: ExitStack, queue_type: str) -> None:
        tag = uuid.uuid4().hex[:8]
        self.name = f"zc-events-bench-failover-{queue_type}-{tag}"
        self.exchange = f"zc-events-bench-failover-{tag}"
        self.queue_type = queue_type
        options = (
            f'{{"url": "{URLS[1]};{URLS[2]};{URLS[0]}", "exchange": "{self.exchange}", '
            f'"queue_type": "{queue_type}", "concurrency": 2}}'
        )
        env = {
            "SERVICE_NAME": self.name,
            "ZC_EVENTS_BACKEND": "rabbitmq",
            "ZC_EVENTS_BACKEND_OPTIONS": options,
            "ZC_EVENTS_LOG_REQUESTS": "0",
        }
        stack.callback(self.delete)
        self.worker = stack.enter_context(run_worker([HANDLERS], env=env))
        self.client = EventClient(
            "rabbitmq",
            settings=Settings({"SERVICE_NAME": self.name}),
            timeout=TIMEOUT,
            url=URLS,
            exchange=self.exchange,
            queue_type=queue_type,
            confirm_timeout=TIMEOUT,
        )
        stack.callback(self.client.close)

    def get(self) -> Any:
        return self.client.get("conformance.add", data={"x": 1, "y": 1}, timeout=TIMEOUT)

    def delete(self) -> None:
        for url in URLS:
            try:
                delete_broker_objects(
                    [self.name, f"{self.name}.dead"],
                    [self.exchange, f"{self.exchange}.dead"],
                    url=url,
                )
                return
            except Exception:
                continue


def latency(services: list[Service], calls: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {s.queue_type: [] for s in services}
    for s in services:  # warm up
        for _ in range(50):
            s.get()
    block = 50
    for _ in range(max(1, calls // block)):
        for s in services:
            for _ in range(block):
                start = time.perf_counter()
                s.get()
                times[s.queue_type].append((time.perf_counter() - start) * 1000)
    return times


def window(service: Service, victim: int) -> tuple[float | None, int, float]:
    """Kill node ``victim`` during a stream of calls: (window s, failed calls, longest call s)."""
    calls: list[tuple[float, float, bool]] = []
    stop = threading.Event()

    def stream() -> None:
        while not stop.is_set():
            for verb in ("get", "post_no_wait"):
                start = time.monotonic()
                try:
                    if verb == "get":
                        service.get()
                    else:
                        service.client.post_no_wait("conformance.add", data={"x": 1, "y": 2})
                    ok = True
                except (PublishError, RequestTimeout):
                    ok = False
                calls.append((start, time.monotonic(), ok))
            time.sleep(0.01)

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()
    time.sleep(1.0)
    killed = time.monotonic()
    cluster("kill", str(victim))
    found: float | None = None
    while time.monotonic() - killed < 30:
        found = next((e - killed for s, e, ok in list(calls) if s >= killed and ok), None)
        if found is not None:
            break
        time.sleep(0.1)
    time.sleep(1.0)
    stop.set()
    thread.join(30)
    after = [(s, e, ok) for s, e, ok in calls if e >= killed]
    failed = sum(1 for _s, _e, ok in after if not ok)
    longest = max((e - s for s, e, _ok in after), default=0.0)
    cluster("revive", str(victim))
    return found, failed, longest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=500, help="gets per queue type")
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")
    with ExitStack() as stack:
        if not up(PORTS[0]):
            print("starting the cluster (scripts/rabbitmq-cluster.sh start)")
            cluster("start")
            stack.callback(cluster, "stop")
        for n, port in enumerate(PORTS, 1):
            if not up(port):
                cluster("revive", str(n))
        quorum, classic = Service(stack, "quorum"), Service(stack, "classic")
        times = latency([quorum, classic], args.calls)
        print(f"\nget over the cluster, {len(times['quorum'])} calls each (ms)")
        print(f"{'queue type':<12}{'p50':>8}{'p90':>8}{'p99':>8}")
        for kind, values in times.items():
            q = statistics.quantiles(values, n=100)
            print(f"{kind:<12}{q[49]:>8.2f}{q[89]:>8.2f}{q[98]:>8.2f}")
        ratio = statistics.median(times["quorum"]) / statistics.median(times["classic"])
        print(f"quorum/classic p50 ratio: {ratio:.2f}")
        print("\nfail-over window (kill -9 to the first successful call after it; target <= 5 s)")
        for label, victim in (("client's node (1)", 1), ("worker's node (2)", 2)):
            # a fresh service each time: its queue has all three members in sync
            quorum = Service(stack, "quorum")
            quorum.get()
            found, failed, longest = window(quorum, victim)
            shown = f"{found:.2f} s" if found is not None else "no success within 30 s"
            if found is None:
                print("worker output:\n" + "\n".join(quorum.worker.lines[-15:]))
            print(
                f"{label:<20} window {shown}; {failed} failed call(s); longest call "
                f"{longest:.2f} s (timeout {TIMEOUT:g} s)"
            )
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")


if __name__ == "__main__":
    main()
