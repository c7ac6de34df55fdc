"""Failure behaviour and the legacy wire against real `celery worker` subprocesses."""

from __future__ import annotations

import json
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from zc_events import legacy, legacy_redis
from zc_events.testing import run_worker
from zc_events.testing.conformance import wait_for_records
from zc_events_celery.testing import delete_celery_exchanges

pytestmark = pytest.mark.celery

BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@pytest.fixture
def redis_client() -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    yield client
    client.close()


def publish_raw(exchange: str, body: bytes, **properties: Any) -> None:
    """Publish bytes to the events exchange the way a non-Celery client (zc_events 0.4) did."""
    import amqp

    headers = properties.pop("headers", None)
    with amqp.Connection("127.0.0.1:5672", userid="guest", password="guest") as connection:
        channel = connection.channel()
        message = amqp.Message(body, application_headers=headers, **properties)
        channel.basic_publish(message, exchange=exchange, routing_key="")
        channel.close()


def wait_for_members(redis_client: Any, key: str, count: int, timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    members: set[int] = set()
    while time.monotonic() < deadline:
        members = {int(m) for m in redis_client.smembers(key)}
        if len(members) >= count:
            break
        time.sleep(0.05)
    return members


def test_old_client_message_is_answered(
    service: Any, session_worker: Any, redis_client: Any
) -> None:
    """The exact bytes zc_events 0.4 published get a reply in the exact format it read."""
    envelope = legacy.Envelope.create("conformance.add", "GET", {"x": 1, "y": 2})
    response_key = str(uuid.uuid4())
    message = legacy.build_request(envelope, response_key)
    publish_raw(service.exchange, message.body, **message.properties)
    raw = legacy_redis.wait_reply(redis_client, response_key, 10, key="conformance.add")
    assert raw == b'{"data":{"answer":3},"has_errors":false,"errors":[]}'
    assert redis_client.ttl(response_key) == -2  # BLPOP took the only item


def test_protocol_1_event_reaches_its_handler(
    service: Any, session_worker: Any, redis_client: Any
) -> None:
    """emit_microservice_event('celery-test.record', set=..., i=7) from an old service."""
    key = f"zc-events-test-celery-{uuid.uuid4()}"
    task_id = str(uuid.uuid4())
    body = legacy.dumps_legacy(
        {
            "task": legacy.EVENT_TASK,
            "id": task_id,
            "args": ["celery-test.record"],
            "kwargs": {"task_id": task_id, "set": key, "i": 7},
        }
    )
    try:
        publish_raw(
            service.exchange,
            body,
            content_type="application/json",
            content_encoding="utf-8",
            priority=0,
        )
        assert wait_for_members(redis_client, key, 1, 10) == {7}
    finally:
        redis_client.delete(key)


def test_bad_payloads_are_logged_and_rejected(service: Any, session_worker: Any) -> None:
    task_headers = {"lang": "py", "task": legacy.EVENT_TASK, "argsrepr": "", "kwargsrepr": ""}
    cases = [
        # valid Celery message, malformed zc-events call: rejected by the task
        (b'[["", {"_backend": {}}], {}, {}]', {**task_headers, "id": str(uuid.uuid4())}),
        (b'[[42, {"_backend": {}}], {}, {}]', {**task_headers, "id": str(uuid.uuid4())}),
        # not JSON at all: rejected by Celery itself
        (b"\xff not json", {**task_headers, "id": str(uuid.uuid4())}),
    ]
    for body, headers in cases:
        publish_raw(
            service.exchange,
            body,
            content_type="application/json",
            content_encoding="utf-8",
            headers=headers,
        )
    assert session_worker.wait_for_output("dead-lettering microservice.event message")
    assert session_worker.wait_for_output("key must be a string")
    assert session_worker.wait_for_output("decode")
    with service.client(timeout=10) as client:
        assert client.get("conformance.add", data={"x": 2, "y": 2}).data == {"answer": 4}
    assert session_worker.process.poll() is None


def test_kill_9_mid_stream_loses_nothing(make_service: Any, redis_client: Any) -> None:
    """SIGKILL the worker while it works through a stream; a new worker finishes it all."""
    service = make_service()
    key = f"zc-events-test-celery-{uuid.uuid4()}"
    total = 40
    try:
        with service.client() as client:
            with service.worker(concurrency=2) as first:
                with client.batch() as batch:
                    for i in range(total):
                        batch.post_no_wait(
                            "celery-test.record", data={"set": key, "i": i, "sleep": 0.05}
                        )
                done = wait_for_members(redis_client, key, 4, 15)
                assert 4 <= len(done) < total, "the stream finished before the kill"
                first.kill()
            assert first.process.returncode == -signal.SIGKILL
            with service.worker(concurrency=4):
                assert wait_for_members(redis_client, key, total, 30) == set(range(total))
    finally:
        redis_client.delete(key)


def test_zc_events_worker_command_serves_and_stops_on_sigterm(make_service: Any) -> None:
    """`zc-events worker --backend celery MODULE` runs a Celery worker for the service."""
    service = make_service()
    env = {
        **service.env,
        "ZC_EVENTS_BACKEND": "celery",
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"url": BROKER_URL, "concurrency": 2}),
    }
    # Ready on the "consuming" line that install() logs once the Celery worker consumes.
    with run_worker(["zc_events.testing.handlers"], env=env) as worker:
        assert service.queue in next(line for line in worker.lines if "consuming" in line)
        with service.client(timeout=10) as client:
            token = str(uuid.uuid4())
            client.post_no_wait("conformance.record", data={"token": token})
            assert client.get("conformance.add", data={"x": 1, "y": 2}).data == {"answer": 3}
            assert wait_for_records(client, token) == [{"method": "POST", "data": {"token": token}}]
        assert worker.terminate(timeout=20) == 0, worker.output
    # This Celery worker has remote control on (Celery's default, as a user's would).
    delete_celery_exchanges(BROKER_URL)


def test_a_deleted_service_leaves_nothing_on_the_broker(make_service: Any) -> None:
    """Every exchange and queue a worker of a test service declared is gone after delete()."""
    import amqp

    service = make_service()
    with service.worker(concurrency=1):
        pass
    service.delete()
    names = {
        "exchange": [service.exchange, service.default_queue],
        "queue": [service.queue, service.default_queue],
    }
    left = []
    with amqp.Connection("127.0.0.1:5672", userid="guest", password="guest") as connection:
        for kind, entities in names.items():
            for name in entities:
                channel = connection.channel()
                try:
                    if kind == "exchange":
                        channel.exchange_declare(name, "direct", passive=True)
                    else:
                        channel.queue_declare(name, passive=True)
                    left.append(f"{kind} {name}")
                    channel.close()
                except amqp.exceptions.NotFound:
                    pass  # the broker closed the channel: the entity is gone
    assert left == []


def test_unreadable_reply_store_is_a_reply_error(service: Any) -> None:
    """Redis down: the call says the request was published and names the reply store."""
    import socket

    from zc_events import EventClient, PublishError, ReplyError

    with socket.socket() as s:  # a local port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = EventClient(
        "celery",
        url=BROKER_URL,
        redis_url=f"redis://127.0.0.1:{port}/0",
        events_exchange=service.exchange,
    )
    with client, pytest.raises(ReplyError) as info:
        client.get("conformance.add", data={"x": 1, "y": 2}, timeout=5)
    assert not isinstance(info.value, PublishError)
    assert "'conformance.add' was published" in str(info.value)
    assert f"reply store, Redis at 127.0.0.1:{port}/0" in str(info.value)


def dead_letters(queue: str) -> list[tuple[dict[str, Any], bytes]]:
    """Take every message off ``queue``: (headers, body)."""
    import amqp

    out = []
    with amqp.Connection("127.0.0.1:5672", userid="guest", password="guest") as connection:
        channel = connection.channel()
        while True:
            message = channel.basic_get(queue, no_ack=True)
            if message is None:
                return out
            body = message.body
            out.append(
                (dict(message.headers or {}), body.encode() if isinstance(body, str) else body)
            )


def queue_count(queue: str) -> int:
    import amqp

    with amqp.Connection("127.0.0.1:5672", userid="guest", password="guest") as connection:
        channel = connection.channel()
        try:
            return int(channel.queue_declare(queue, passive=True).message_count)
        except Exception:
            return 0


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def test_failed_no_wait_work_is_dead_lettered_with_the_error(
    service: Any, session_worker: Any
) -> None:
    with service.client() as client:
        message_id = client.post_no_wait("celery-test.fail", data={"n": 1})
        letters: list[tuple[dict[str, Any], bytes]] = []

        def arrived() -> bool:  # other tests dead-letter to the same queue: keep only ours
            letters.extend(
                (h, b) for h, b in dead_letters(service.dead_queue) if message_id.encode() in b
            )
            return bool(letters)

        wait_until(arrived, 30, "the failed message in the dead-letter queue")
    assert len(letters) == 1, session_worker.output
    headers, body = letters[0]
    assert headers["x-zc-events-error-type"] == "ValueError"
    assert headers["x-zc-events-error-message"] == "boom {'n': 1}"
    assert headers["x-zc-events-attempts"] == 1
    assert headers["x-zc-events-queue"] == service.queue
    assert headers["task"] == legacy.EVENT_TASK  # a task message: it can be replayed as it is
    assert legacy.parse_request(body, headers).envelope.id == message_id


def test_a_non_uuid_response_key_is_dead_lettered_without_touching_redis(
    service: Any, session_worker: Any, redis_client: Any
) -> None:
    victim = f"zc-events-test-victim-{uuid.uuid4()}"
    redis_client.rpush(victim, b"precious")
    try:
        envelope = legacy.Envelope.create("conformance.add", "GET", {"x": 1, "y": 2})
        payload = legacy.build_payload(envelope, victim)
        message = legacy.task_message(["conformance.add", payload], {}, envelope.id)
        publish_raw(service.exchange, message.body, **message.properties)
        letters: list[dict[str, Any]] = []

        def arrived() -> bool:  # other tests dead-letter to the same queue: keep only ours
            letters.extend(
                h for h, b in dead_letters(service.dead_queue) if envelope.id.encode() in b
            )
            return bool(letters)

        wait_until(arrived, 30, "the message in the dead-letter queue")
        assert redis_client.ttl(victim) == -1
        assert redis_client.lrange(victim, 0, -1) == [b"precious"]
        assert "response_key' must be a UUID" in letters[0]["x-zc-events-error"]
    finally:
        redis_client.delete(victim)


def test_a_handler_that_kills_the_worker_is_dead_lettered_after_n_deliveries(
    make_service: Any, redis_client: Any
) -> None:
    service = make_service()
    attempts = f"zc-events-test-celery-attempts-{uuid.uuid4()}"
    env = {"ZC_EVENTS_MAX_DELIVERIES": "2"}
    try:
        with service.client() as client:
            with service.worker(concurrency=1, env=env) as worker:
                message_id = client.post_no_wait("celery-test.exit", data={"list": attempts})
                worker.process.wait(60)
            for _restart in range(4):  # a supervisor restarting the worker each time it dies
                if queue_count(service.dead_queue):
                    break
                with service.worker(concurrency=1, env=env) as worker:
                    deadline = time.monotonic() + 60
                    while worker.process.poll() is None and not queue_count(service.dead_queue):
                        assert time.monotonic() < deadline, worker.output
                        time.sleep(0.2)
            else:
                pytest.fail("still redelivered after 4 restarts")
            assert redis_client.llen(attempts) == 2
        [(headers, body)] = dead_letters(service.dead_queue)
        assert message_id.encode() in body
        assert headers["x-zc-events-attempts"] == 2
        assert "ZC_EVENTS_MAX_DELIVERIES=2" in headers["x-zc-events-error"]
    finally:
        redis_client.delete(attempts)


def test_the_worker_says_consuming_once_it_consumes(service: Any, session_worker: Any) -> None:
    """The line every zc-events worker logs when ready (run_worker and probes wait for it)."""
    assert session_worker.wait_for_output(f"consuming {service.queue}", timeout=10)
    before = session_worker.output.split("consuming", 1)[0]
    assert "Connected to amqp://" in before  # logged once Celery consumes, not at import time
