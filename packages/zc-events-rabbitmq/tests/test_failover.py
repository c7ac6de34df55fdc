"""Fail-over on the local three-node cluster (``scripts/rabbitmq-cluster.sh``): a worker and a
client given all three URLs, quorum queues, and ``kill -9`` of the node one of them is on in the
middle of a stream of calls.

What a user must see: no call hangs past its timeout (it fails with PublishError or
RequestTimeout, or is answered), calls succeed again within seconds, and every ``post_no_wait``
that returned is handled. The window (kill to the first successful call after it) is measured
and printed in the assertion messages; the bound has slack for a loaded machine.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from zc_events import AsyncEventClient, EventClient, PublishError, RequestTimeout, Settings
from zc_events_rabbitmq._amqp import describe_url
from zc_events_rabbitmq.testing import delete_broker_objects

pytestmark = [pytest.mark.cluster]

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "rabbitmq-cluster.sh"
PORTS = (5681, 5682, 5683)
URLS = [f"amqp://guest:guest@127.0.0.1:{port}/%2F" for port in PORTS]
MODULES = ("fault_handlers",)
#: Seconds a call may wait (get timeout, confirm timeout).
TIMEOUT = 5.0
#: What the issue asks for, and the bound the tests assert: wide, so that a loaded machine cannot
#: break it (kill -9 and a node's restart take seconds there); the window is printed.
TARGET_WINDOW = 5.0
ASSERTED_WINDOW = 30.0
#: Seconds a call may take past its timeout before it counts as hanging (twice the timeout).
SLACK = 10.0


def cluster(*args: str) -> None:
    subprocess.run(["bash", str(SCRIPT), *args], check=True, capture_output=True, timeout=120)


def node_up(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture
def nodes() -> Iterator[list[str]]:
    """The three node URLs; every node is running before and after the test."""
    for n, port in enumerate(PORTS, 1):
        if not node_up(port):
            cluster("revive", str(n))
    yield URLS
    for n, port in enumerate(PORTS, 1):
        if not node_up(port):
            cluster("revive", str(n))


def handled(log: Path) -> set[int]:
    return {int(line) for line in log.read_text().split()} if log.exists() else set()


@dataclass
class Stream:
    """Sequential calls on one client: a ``get``, then a ``post_no_wait``, again and again."""

    client: Any  # an EventClient (run() is sync) or an AsyncEventClient (arun())
    calls: list[tuple[str, float, float, str]] = field(
        default_factory=list
    )  # verb, start, end, outcome
    sent: list[int] = field(default_factory=list)  # ids of the post_no_wait calls that returned
    stop: threading.Event = field(default_factory=threading.Event)
    unexpected: list[BaseException] = field(default_factory=list)

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            for verb in ("get", "post_no_wait"):
                start = time.monotonic()
                try:
                    if verb == "get":
                        reply = self.client.get("fault.ping", data=i, timeout=TIMEOUT)
                        assert reply.data["pong"] == i, reply
                    else:
                        self.client.post_no_wait("fault.log", data={"i": i})
                        self.sent.append(i)
                    outcome = "ok"
                except (PublishError, RequestTimeout) as exc:
                    outcome = type(exc).__name__
                except BaseException as exc:
                    self.unexpected.append(exc)
                    outcome = repr(exc)
                self.calls.append((verb, start, time.monotonic(), outcome))
            time.sleep(0.01)

    def window(self, killed_at: float) -> float | None:
        """Seconds from the kill to the end of the first successful call that started after it
        (None: no call succeeded after the kill)."""
        for _verb, start, end, outcome in self.calls:
            if start >= killed_at and outcome == "ok":
                return end - killed_at
        return None

    def report(self, killed_at: float) -> str:
        failed = [(v, round(s - killed_at, 2), o) for v, s, _e, o in self.calls if o != "ok"]
        return f"{len(self.calls)} calls; failed (verb, seconds after the kill, error): {failed}"


def start_worker(service: Any, log: Path, nodes: list[str]) -> Any:
    """A worker on quorum queues that prefers node 2 (the client prefers node 1: a kill takes
    down one of them only)."""
    return service.start(
        MODULES,
        extra_env={"FAULT_LOG": str(log)},
        url=";".join([nodes[1], nodes[2], nodes[0]]),
        queue_type="quorum",
        concurrency=2,
    )


def client_options(service: Any, nodes: list[str]) -> dict[str, Any]:
    """Options of a client given all three nodes, on quorum queues."""
    return {
        "settings": Settings({"SERVICE_NAME": service.name}),
        "timeout": TIMEOUT,
        "url": nodes,
        "queue_type": "quorum",
        "exchange": service.exchange,
        "confirm_timeout": TIMEOUT,
        "connection_name": f"{service.connection_name} client",
    }


def failover(
    service: Any,
    tmp_path: Path,
    wait_for: Any,
    nodes: list[str],
    kill: str,
) -> None:
    log = tmp_path / "handled.log"
    worker = start_worker(service, log, nodes)
    assert f"at {describe_url(nodes[1])}" in worker.output, worker.output
    client = EventClient("rabbitmq", **client_options(service, nodes))
    try:
        service.wait_ready(client, "fault.ping", timeout=60)
        assert client.backend.node == describe_url(nodes[0])
        victim = 1 if kill == "client" else 2
        stream = Stream(client)
        thread = threading.Thread(target=stream.run, daemon=True)
        thread.start()
        time.sleep(1.0)
        killed_at = time.monotonic()
        cluster("kill", str(victim))
        wait_for(
            lambda: (
                stream.window(killed_at) is not None
                and time.monotonic() - killed_at > TARGET_WINDOW + 3
            ),
            ASSERTED_WINDOW + 30,
            "calls succeeding again after the kill",
        )
        stream.stop.set()
        thread.join(TIMEOUT * 4)
        assert not thread.is_alive(), "a call hung: " + stream.report(killed_at)
        report = stream.report(killed_at)
        assert not stream.unexpected, report
        longest = max(end - start for _v, start, end, _o in stream.calls)
        assert longest < TIMEOUT + SLACK, f"a call took {longest:.1f} s; {report}"
        window = stream.window(killed_at)
        assert window is not None and window < ASSERTED_WINDOW, (
            f"calls succeeded again {window} s after the kill (target {TARGET_WINDOW} s); {report}"
        )
        print(f"fail-over window ({kill}'s node killed): {window:.2f} s; {report}")
        assert stream.sent, report
        wait_for(
            lambda: set(stream.sent) <= handled(log),
            60,
            "every post_no_wait that returned handled",
        )
        if kill == "worker":
            assert "lost the connection to RabbitMQ at" in worker.output, worker.output
            assert f"reconnected to RabbitMQ at {describe_url(nodes[2])}" in worker.output, (
                worker.output
            )
        else:
            assert client.backend.node != describe_url(nodes[0])
    finally:
        client.close()


@pytest.fixture
def cluster_service(service: Any, nodes: list[str]) -> Iterator[Any]:
    yield service
    for w in service.workers:
        w.kill()
    delete_broker_objects(
        [service.name, f"{service.name}.dead"],
        [service.exchange, f"{service.exchange}.dead"],
        url=nodes[2],
    )


def test_the_node_the_client_is_on_dies(
    cluster_service: Any, tmp_path: Path, wait_for: Any, nodes: list[str]
) -> None:
    failover(cluster_service, tmp_path, wait_for, nodes, kill="client")


def test_the_node_the_worker_is_on_dies(
    cluster_service: Any, tmp_path: Path, wait_for: Any, nodes: list[str]
) -> None:
    failover(cluster_service, tmp_path, wait_for, nodes, kill="worker")


async def test_the_node_the_async_client_is_on_dies(
    cluster_service: Any, tmp_path: Path, nodes: list[str]
) -> None:
    """The asyncio backend: the same stream with ``await``, the client's node killed."""
    service = cluster_service
    log = tmp_path / "handled.log"
    start_worker(service, log, nodes)
    client = AsyncEventClient("rabbitmq", **client_options(service, nodes))
    async with client:
        deadline = time.monotonic() + 60
        while True:
            try:
                await client.get("fault.ping", data=0, timeout=1)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
        assert client.backend.node == describe_url(nodes[0])
        stream = Stream(client)
        loop = asyncio.get_running_loop()
        began = time.monotonic()
        killed_at: float | None = None
        kill: Any = None
        i = 0
        while True:
            now = time.monotonic()
            if killed_at is None and now - began > 1.0:
                killed_at = now
                kill = loop.run_in_executor(None, cluster, "kill", "1")
            if killed_at is not None and (
                (stream.window(killed_at) is not None and now - killed_at > TARGET_WINDOW + 3)
                or now - killed_at > ASSERTED_WINDOW + 30
            ):
                break
            i += 1
            for verb in ("get", "post_no_wait"):
                start = time.monotonic()
                try:
                    async with asyncio.timeout(TIMEOUT + SLACK):
                        if verb == "get":
                            reply = await client.get("fault.ping", data=i, timeout=TIMEOUT)
                            assert reply.data["pong"] == i, reply
                        else:
                            await client.post_no_wait("fault.log", data={"i": i})
                            stream.sent.append(i)
                    outcome = "ok"
                except (PublishError, RequestTimeout) as exc:
                    outcome = type(exc).__name__
                except TimeoutError:
                    outcome = "hung"
                stream.calls.append((verb, start, time.monotonic(), outcome))
            await asyncio.sleep(0.01)
        await kill
    assert killed_at is not None
    report = stream.report(killed_at)
    assert all(o != "hung" for _v, _s, _e, o in stream.calls), report
    window = stream.window(killed_at)
    assert window is not None and window < ASSERTED_WINDOW, (
        f"calls succeeded again {window} s after the kill (target {TARGET_WINDOW} s); {report}"
    )
    deadline = time.monotonic() + 60
    while not set(stream.sent) <= handled(log):
        assert time.monotonic() < deadline, (
            f"not handled: {sorted(set(stream.sent) - handled(log))}; {report}"
        )
        await asyncio.sleep(0.2)
