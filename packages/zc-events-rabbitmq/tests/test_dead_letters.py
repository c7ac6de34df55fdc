"""One bad message never wedges a worker; senders cannot choose where replies go.

Real RabbitMQ, Redis and ``zc-events worker`` subprocesses serving the native and the legacy
protocol side by side.
"""

from __future__ import annotations

import datetime
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from zc_events import Envelope, legacy
from zc_events.serving import (
    ATTEMPTS_HEADER,
    ERROR_HEADER,
    ERROR_MESSAGE_HEADER,
    ERROR_TYPE_HEADER,
    FAILED_AT_HEADER,
    QUEUE_HEADER,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.redis]

MODULES = ("fault_handlers",)


def native(key: str, data: Any = None, *, wait: bool = False) -> tuple[Envelope, bytes]:
    envelope = Envelope.create(key, "POST", data)
    if wait:
        envelope.reply_to = "amq.rabbitmq.reply-to"
    return envelope, envelope.encode()


def publish_native(broker: Any, service: Any, key: str, body: bytes, **props: Any) -> None:
    broker.publish(service.exchange, key, body, content_type="application/json", **props)


def publish_legacy(broker: Any, service: Any, message: legacy.LegacyPublish) -> None:
    broker.publish(service.events_exchange, "", message.body, **message.properties)


def handled(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def test_replies_go_only_to_direct_reply_to_names(service: Any, broker: Any, wait_for: Any) -> None:
    victim = f"{service.name}-victim"
    conn, ch = broker._channel()
    try:
        ch.queue_declare(victim, auto_delete=False)
    finally:
        conn.close()
    try:
        worker = service.start(MODULES)
        with service.client() as client:
            service.wait_ready(client, "fault.ping")
            envelope, body = native("fault.ping", 1, wait=True)
            publish_native(
                broker, service, "fault.ping", body, reply_to=victim, correlation_id=envelope.id
            )
            wait_for(lambda: envelope.id in worker.output, 20, "the worker to log the refusal")
            assert client.get("fault.ping", data=2).data["pong"] == 2
        assert broker.count(victim) == 0
        line = next(
            line
            for line in worker.output.splitlines()
            if envelope.id in line and "reply-to" in line
        )
        assert "WARNING" in line and "'fault.ping'" in line and "direct reply-to" in line
    finally:
        broker.delete(queues=[victim])


def test_legacy_response_key_must_be_a_uuid_and_redis_is_not_touched(
    service: Any, broker: Any, redis_client: Any, wait_for: Any
) -> None:
    victim = f"zc-events-test-victim-{uuid.uuid4()}:session"
    redis_client.rpush(victim, b"precious")
    try:
        service.start(MODULES, legacy=True)
        with service.client() as client:
            service.wait_ready(client, "fault.ping")
            envelope = Envelope.create("fault.ping", "GET", 1)
            payload = legacy.build_payload(envelope, victim)
            message = legacy.task_message(["fault.ping", payload], {}, envelope.id)
            publish_legacy(broker, service, message)
            wait_for(lambda: broker.count(f"{service.name}.dead") == 1, 20, "a dead letter")
        assert redis_client.ttl(victim) == -1  # no EXPIRE
        assert redis_client.lrange(victim, 0, -1) == [b"precious"]  # no RPUSH
        [(props, _body)] = broker.get_all(f"{service.name}.dead")
        assert "response_key' must be a UUID" in props.headers[ERROR_HEADER]
    finally:
        redis_client.delete(victim)


POISON = [
    pytest.param(b"\x00not json", id="not-json"),
    pytest.param(b"[" * 200000, id="deep-nesting"),
    pytest.param(
        b'{"v":1,"id":"x","key":["a"],"method":"GET","data":null,"headers":{},'
        b'"reply_to":null,"deadline":null,"priority":0,"sent_at":1}',
        id="key-is-a-list",
    ),
]
LEGACY_POISON = [
    pytest.param(b"[1, 2", id="not-json"),
    pytest.param(b"[" * 200000, id="deep-nesting"),
    pytest.param(b'[[["a"], {"_backend": {}, "id": "x"}], {}, {}]', id="key-is-a-list"),
]


def test_any_undecodable_message_is_dead_lettered_with_one_error_line(
    service: Any, broker: Any, wait_for: Any
) -> None:
    worker = service.start(MODULES, legacy=True)
    bodies = [p.values[0] for p in POISON] + [p.values[0] for p in LEGACY_POISON]
    with service.client() as client:
        service.wait_ready(client, "fault.ping")
        for param in POISON:
            publish_native(broker, service, "fault.ping", param.values[0])
        for param in LEGACY_POISON:
            broker.publish(
                service.events_exchange,
                "",
                param.values[0],
                headers={"task": legacy.EVENT_TASK, "id": str(uuid.uuid4())},
            )
        dead = f"{service.name}.dead"
        wait_for(lambda: broker.count(dead) == len(bodies), 30, f"{len(bodies)} dead letters")
        assert client.get("fault.ping", data=3).data["pong"] == 3
        legacy_client = service.client("rabbitmq_legacy")
        with legacy_client:
            assert legacy_client.get("fault.ping", data=4, timeout=10).data["pong"] == 4
    assert sorted(body for _, body in broker.get_all(dead)) == sorted(bodies)
    log = worker.output
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len([e for e in errors if "dead-lettering" in e]) == len(bodies), log
    assert "Traceback" not in log
    assert "reconnecting" not in log  # no exception reached pika's callback
    assert worker.poll() is None


def test_redis_outage_never_reaches_rabbitmq_nor_reruns_the_handler(
    service: Any, broker: Any, tmp_path: Path, wait_for: Any
) -> None:
    log = tmp_path / "handled.log"
    # Replies go to a Redis that is not there (nothing listens on port 9).
    worker = service.start(
        MODULES, legacy=True, extra_env={"FAULT_LOG": str(log)}, redis_url="redis://127.0.0.1:9/0"
    )
    with service.client() as client:
        service.wait_ready(client, "fault.ping")
        envelope = Envelope.create("fault.log", "POST", {"i": 7})
        publish_legacy(broker, service, legacy.build_request(envelope, str(uuid.uuid4())))
        wait_for(lambda: "could not push the reply" in worker.output, 60, "the push to give up")
        time.sleep(1)  # a redelivery, if any, would run the handler again by now
        assert handled(log) == [7]
        assert broker.count(f"{service.name}-events") == 0
        assert broker.count(f"{service.name}.dead") == 0
        # the AMQP side is untouched: the same worker keeps serving
        assert client.get("fault.ping", data=5).data["pong"] == 5
    assert "attempt 2 of 4" in worker.output and "reconnecting" not in worker.output
    assert worker.poll() is None


@pytest.mark.parametrize("protocol", ["native", "legacy"])
def test_a_handler_that_kills_the_worker_is_dead_lettered_after_n_deliveries(
    protocol: str, service: Any, broker: Any, tmp_path: Path, wait_for: Any
) -> None:
    log = tmp_path / "handled.log"
    env = {"FAULT_LOG": str(log), "ZC_EVENTS_MAX_DELIVERIES": "3"}
    worker = service.start(MODULES, legacy=True, extra_env=env, concurrency=1)
    with service.client() as client:
        service.wait_ready(client, "fault.ping")
        envelope = Envelope.create("fault.exit", "POST", {"i": 1})
        if protocol == "native":
            publish_native(broker, service, "fault.exit", envelope.encode(), delivery_mode=2)
        else:
            publish_legacy(broker, service, legacy.build_request(envelope, None))
        dead = f"{service.name}.dead"
        for _restart in range(6):  # a supervisor restarting the worker each time it dies
            wait_for(lambda w=worker: w.poll() is not None or broker.count(dead), 60)
            if broker.count(dead):
                break
            assert worker.returncode == 3, worker.output
            # not waiting for "consuming": it may die on its first message before saying so
            worker = service.start(MODULES, legacy=True, extra_env=env, concurrency=1, ready=None)
        else:
            pytest.fail(f"still redelivered after 6 restarts; handled {handled(log)}")
        assert handled(log) == [1, 1, 1]
        service.wait_ready(client, "fault.ping")
    [(props, body)] = broker.get_all(dead)
    assert envelope.id.encode() in body
    assert props.headers[ATTEMPTS_HEADER] == 3
    assert "ZC_EVENTS_MAX_DELIVERIES=3" in props.headers[ERROR_HEADER]
    assert worker.poll() is None


@pytest.mark.parametrize("protocol", ["native", "legacy"])
def test_failed_no_wait_work_is_dead_lettered_with_the_error(
    protocol: str, service: Any, broker: Any, wait_for: Any
) -> None:
    service.start(MODULES, legacy=True)
    backend = "rabbitmq" if protocol == "native" else "rabbitmq_legacy"
    queue = service.name if protocol == "native" else f"{service.name}-events"
    with service.client() as ready, service.client(backend) as client:
        service.wait_ready(ready, "fault.ping")
        started = time.time()
        message_id = client.post_no_wait("fault.fail", data={"n": 1})
        dead = f"{service.name}.dead"
        wait_for(lambda: broker.count(dead) == 1, 20, "the failed message to be dead-lettered")
    [(props, body)] = broker.get_all(dead)
    assert message_id.encode() in body
    headers = props.headers
    assert headers[ERROR_TYPE_HEADER] == "ValueError"
    assert headers[ERROR_MESSAGE_HEADER] == "boom {'n': 1}"
    assert headers[ATTEMPTS_HEADER] == 1
    assert headers[QUEUE_HEADER] == queue
    failed_at = datetime.datetime.fromisoformat(headers[FAILED_AT_HEADER].replace("Z", "+00:00"))
    assert started - 1 <= failed_at.timestamp() <= time.time() + 1


def test_failed_no_wait_work_is_dropped_when_the_setting_is_off(
    service: Any, broker: Any, wait_for: Any
) -> None:
    worker = service.start(
        MODULES, legacy=True, extra_env={"ZC_EVENTS_DEAD_LETTER_FAILED_NO_WAIT": "false"}
    )
    with service.client() as client:
        service.wait_ready(client, "fault.ping")
        message_id = client.post_no_wait("fault.fail", data={"n": 2})
        wait_for(lambda: message_id in worker.output, 20, "the failure to be logged")
    assert broker.count(f"{service.name}.dead") == 0
    assert broker.count(service.name) == 0
