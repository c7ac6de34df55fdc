"""The native backend and worker beyond the conformance suite."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from zc_events import ConfigurationError, EventClient, PublishError, RequestTimeout, Settings
from zc_events_rabbitmq import RabbitMQBackend

MODULES = ("fault_handlers",)


def handled(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prefetch": 0}, "'prefetch' must be an int >= 1"),
        ({"concurrency": "4"}, "'concurrency' must be an int >= 1"),
        ({"exchange": ""}, "'exchange' must be a non-empty string"),
        ({"confirm_timeout": -1}, "'confirm_timeout' must be a positive number"),
        ({"prefetchh": 1}, "unknown option(s): prefetchh"),
        ({"url": "http://nope"}, "invalid RabbitMQ URL"),
    ],
)
def test_bad_options_name_the_problem(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RabbitMQBackend(**options)
    assert message in str(info.value)


def test_unreachable_broker_fails_fast_naming_the_url_without_password() -> None:
    client = EventClient("rabbitmq", url="amqp://guest:secret@127.0.0.1:1/%2F")
    started = time.monotonic()
    with pytest.raises(PublishError) as info:
        client.get("x", timeout=60)
    assert time.monotonic() - started < 30  # a refused connection, not the 60 s timeout
    assert "amqp://guest:***@127.0.0.1:1/%2F" in str(info.value)
    assert "secret" not in str(info.value)


def test_worker_needs_a_service_name() -> None:
    backend = RabbitMQBackend(settings=Settings({}))
    with pytest.raises(ConfigurationError, match="SERVICE_NAME"):
        backend.queue  # noqa: B018


@pytest.mark.rabbitmq
def test_sigterm_finishes_the_message_in_flight_then_exits_0(service: Any) -> None:
    worker = service.start()
    with service.client() as client:
        service.wait_ready(client)
        result: dict[str, Any] = {}
        call = threading.Thread(
            target=lambda: result.update(
                r=client.get("conformance.sleep", data={"seconds": 3}, timeout=20)
            )
        )
        call.start()
        # The handler is running by then (a message still unhandled at SIGTERM is handed back
        # to the broker): a wide margin, for a loaded machine.
        time.sleep(1.5)
        assert worker.terminate() == 0
        call.join(20)
    assert result["r"].data == {"slept": 3}
    assert "stopped consuming" in worker.output


@pytest.mark.rabbitmq
def test_queue_while_worker_down(service: Any, broker: Any, tmp_path: Path, wait_for: Any) -> None:
    """No-wait messages wait (persistent, by priority); expired requests are dropped, not
    dead-lettered."""
    log = tmp_path / "handled.log"
    env = {"FAULT_LOG": str(log)}
    worker = service.start(MODULES, extra_env=env)
    with service.client() as client:
        service.wait_ready(client, "fault.ping")
        assert worker.terminate() == 0
        with pytest.raises(RequestTimeout):  # bound but nobody consumes: a timeout, not no-route
            client.get("fault.ping", timeout=0.2)
        for i in range(5):
            client.post_no_wait("fault.log", data={"i": i})
        client.post_no_wait("fault.log", data={"i": 99}, priority=9)
        wait_for(lambda: broker.count(service.name) == 6, 10, "the expired request to go")
        assert broker.count(f"{service.name}.dead") == 0
        service.start(MODULES, extra_env=env, concurrency=1, prefetch=1)
        wait_for(lambda: len(handled(log)) == 6, 30, "the queued messages")
    assert handled(log)[0] == 99  # the high-priority message first


@pytest.mark.rabbitmq
def test_worker_refuses_a_queue_declared_differently(service: Any, broker: Any) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
    conn.channel().queue_declare(service.name, durable=True)  # no x-max-priority
    conn.close()
    worker = service.start(ready=None)  # it exits before it consumes
    assert worker.wait(30) == 2  # a configuration problem
    assert "PRECONDITION_FAILED" in worker.output
    assert service.name in worker.output


@pytest.mark.rabbitmq
def test_threads_share_a_client_with_one_connection_each_at_most(served: Any) -> None:
    with served.client() as client:
        errors: list[BaseException] = []

        def run() -> None:
            try:
                for i in range(20):
                    assert client.get("conformance.add", data={"x": i, "y": 1}).data == {
                        "answer": i + 1
                    }
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors
        assert len(client.backend._idle) <= 8
    assert client.backend._idle == []
    with pytest.raises(PublishError, match="closed"):
        client.get("conformance.add", data={"x": 1, "y": 1})
