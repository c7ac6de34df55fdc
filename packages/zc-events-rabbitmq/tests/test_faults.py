"""Fault tests: real broker, real worker subprocesses, only our own connections disturbed."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from zc_events import PublishError

pytestmark = pytest.mark.rabbitmq

MODULES = ("fault_handlers",)


def handled(log: Path) -> list[int]:
    if not log.exists():
        return []
    return [int(line) for line in log.read_text().split()]


def test_kill_9_with_5000_queued_loses_nothing(service: Any, tmp_path: Path, wait_for: Any) -> None:
    log = tmp_path / "handled.log"
    env = {"FAULT_LOG": str(log)}
    first = service.start(MODULES, extra_env=env, concurrency=2, prefetch=50)
    with service.client() as client:
        service.wait_ready(client, "fault.ping")
        with client.batch() as batch:
            for i in range(5000):
                batch.post_no_wait("fault.log", data={"i": i, "sleep": 0.001})
        wait_for(lambda: len(handled(log)) >= 500, what="the first worker to start")
        first.kill()  # SIGKILL: unacknowledged messages go back to the queue
        done_by_first = len(handled(log))
        assert done_by_first < 5000, "the first worker finished before it could be killed"
        service.start(MODULES, extra_env=env, concurrency=2, prefetch=50)
        wait_for(lambda: set(handled(log)) >= set(range(5000)), 60, "all 5000 to be handled")
    assert sorted(set(handled(log))) == list(range(5000))


def test_broker_drops_every_connection_mid_stream(
    service: Any, broker: Any, tmp_path: Path, wait_for: Any
) -> None:
    log = tmp_path / "handled.log"
    worker = service.start(MODULES, extra_env={"FAULT_LOG": str(log)}, concurrency=2)
    published: list[int] = []
    failed: list[BaseException] = []
    with service.client() as client:
        service.wait_ready(client, "fault.ping")
        stop = threading.Event()

        def publish() -> None:
            i = 0
            while not stop.is_set() and i < 20000:
                try:
                    client.post_no_wait("fault.log", data={"i": i})
                    published.append(i)
                except PublishError as exc:
                    failed.append(exc)
                i += 1

        publisher = threading.Thread(target=publish)
        publisher.start()
        try:
            wait_for(lambda: len(published) > 200, what="publishing to start")
            closed = broker.close_connections(service.connection_name)
            assert closed >= 3  # the client's and both worker threads'
            count = len(published)
            wait_for(lambda: len(published) > count + 200, 30, "publishing to resume")
        finally:
            stop.set()
            publisher.join(60)
        # the worker reconnected: it handles every message whose publish returned
        wait_for(lambda: set(handled(log)) >= set(published), 60, "every published message")
        assert client.get("fault.ping", data=1).data["pong"] == 1
    assert "reconnecting" in worker.output
    assert worker.poll() is None


def test_client_reconnects_after_its_connection_is_closed(service: Any, broker: Any) -> None:
    service.start(MODULES)
    with service.client() as client:
        service.wait_ready(client, "fault.ping")
        assert broker.close_connections(f"{service.connection_name} client") == 1
        time.sleep(0.6)  # idle long enough for the pool to probe the connection first
        assert client.get("fault.ping", data=2).data["pong"] == 2


def test_poison_message_is_dead_lettered_and_the_worker_keeps_serving(
    service: Any, broker: Any, wait_for: Any
) -> None:
    worker = service.start(MODULES, legacy=True)
    with service.client() as client:
        service.wait_ready(client, "fault.ping")
        broker.publish(service.exchange, "fault.ping", b"\x00not json", content_type="text/plain")
        broker.publish(
            service.events_exchange, "", b"[1, 2", headers={"task": "microservice.event"}
        )
        wait_for(lambda: broker.count(f"{service.name}.dead") == 2, 15, "two dead letters")
        assert client.get("fault.ping", data=3).data["pong"] == 3
    dead = broker.get_all(f"{service.name}.dead")
    assert sorted(body for _, body in dead) == sorted([b"\x00not json", b"[1, 2"])
    assert "dead-lettering a message (routing key 'fault.ping'" in worker.output
    assert "dead-lettering a legacy message" in worker.output
    assert worker.terminate() == 0
