"""Legacy notifications on the real broker, both ways: what ``publish_notification`` puts on
``NOTIFICATIONS_EXCHANGE`` against the captures of zc_events 0.4.1, and a new worker consuming
the captured notification (``notifications=["email"]``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from zc_events import ConfigurationError, EventClient, NoRouteError, Settings, legacy

pytestmark = [pytest.mark.rabbitmq, pytest.mark.redis]

WIRE = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "legacy-wire"
CAPTURE = json.loads((WIRE / "email_notification.json").read_text())
VIA_SEND_EMAIL = CAPTURE["also_captured_via_send_email"]
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def topic(broker: Any) -> Iterator[str]:
    """A unique notifications exchange (a durable topic exchange, as the fleet's); deleted after."""
    name = f"zc-events-test-notify-{uuid.uuid4().hex[:10]}"
    yield name
    broker.delete(exchanges=[name])


@pytest.fixture
def old_email_queue(broker: Any, topic: str) -> Iterator[str]:
    """A queue bound as the old email service's: ``microservice.notification.#``."""
    queue = f"zc-events-test-old-email-{uuid.uuid4().hex[:10]}"
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    ch = conn.channel()
    ch.exchange_declare(topic, "topic", durable=True)
    ch.queue_declare(queue, durable=True)
    ch.queue_bind(queue, topic, routing_key="microservice.notification.#")
    conn.close()
    yield queue
    broker.delete(queues=[queue])


def client_for(service: Any, topic: str | None, **settings: Any) -> EventClient:
    options = {"events_exchange": service.events_exchange, "redis_url": REDIS_URL}
    if topic is not None:
        options["notifications_exchange"] = topic
    return EventClient(
        "rabbitmq_legacy",
        settings=Settings({"SERVICE_NAME": service.name, **settings}),
        **options,
    )


def test_publish_notification_puts_the_captured_message_on_the_topic_exchange(
    service: Any, broker: Any, topic: str, old_email_queue: str
) -> None:
    sent = VIA_SEND_EMAIL["body"]["json"]
    message = legacy.notification_message("send_email", (), sent["kwargs"], message_id=sent["id"])
    with client_for(service, topic) as client:
        assert isinstance(client.backend, legacy.NotificationPublisher)
        client.backend.publish_notification("email", message)
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        method, props, body = conn.channel().basic_get(old_email_queue, auto_ack=True)
    finally:
        conn.close()
    assert method is not None, "nothing arrived in the old email service's queue"
    assert method.exchange == topic
    assert method.routing_key == VIA_SEND_EMAIL["amqp"]["routing_key"]
    assert body == VIA_SEND_EMAIL["body"]["raw"].encode()
    captured = VIA_SEND_EMAIL["amqp"]["properties"]
    assert {name: getattr(props, name) for name in captured} == captured
    # the content header frame, byte for byte
    header = pika.frame.Header(1, len(body), props).marshal()
    assert header[7:-1].hex() == VIA_SEND_EMAIL["amqp"]["frames_hex"]["content_header_payload"]


def test_a_notification_no_service_is_bound_for_raises_no_route(service: Any, topic: str) -> None:
    message = legacy.notification_message("send_sms", (), {"to": "+1"})
    with client_for(service, topic) as client, pytest.raises(NoRouteError, match="text"):
        client.backend.publish_notification("text", message)


def test_publishing_needs_notifications_exchange(service: Any) -> None:
    message = legacy.notification_message("send_email", (), {})
    with (
        client_for(service, None) as client,
        pytest.raises(ConfigurationError, match="NOTIFICATIONS_EXCHANGE"),
    ):
        client.backend.publish_notification("email", message)


@pytest.mark.parametrize("backend", ["rabbitmq_legacy", "rabbitmq"])
def test_consuming_needs_notifications_exchange(service: Any, backend: str) -> None:
    from zc_events import create_backend

    options: dict[str, Any] = {"events_exchange": service.events_exchange}
    if backend == "rabbitmq":
        options["legacy"] = True
    with pytest.raises(ConfigurationError, match="NOTIFICATIONS_EXCHANGE"):
        create_backend(
            backend, Settings({"SERVICE_NAME": service.name}), notifications=["email"], **options
        )


def test_notifications_on_the_native_backend_need_legacy() -> None:
    from zc_events import create_backend

    with pytest.raises(ConfigurationError, match="legacy=True"):
        create_backend(
            "rabbitmq",
            Settings({"SERVICE_NAME": "x", "NOTIFICATIONS_EXCHANGE": "n"}),
            notifications=["email"],
        )


def test_an_unknown_kind_is_refused(service: Any) -> None:
    from zc_events import create_backend

    with pytest.raises(ConfigurationError, match="'fax'"):
        create_backend(
            "rabbitmq_legacy",
            Settings({"SERVICE_NAME": service.name, "NOTIFICATIONS_EXCHANGE": "n"}),
            events_exchange=service.events_exchange,
            notifications=["fax"],
        )


@pytest.mark.parametrize("backend", ["rabbitmq_legacy", "rabbitmq"])
def test_a_new_worker_gets_the_captured_notification_as_its_send_email_data(
    service: Any, broker: Any, redis_client: Any, topic: str, wait_for: Any, backend: str
) -> None:
    calls = f"zc-events-test-legacy-calls-{uuid.uuid4().hex[:10]}"
    options: dict[str, Any] = {"notifications": ["email"], "notifications_exchange": topic}
    if backend == "rabbitmq":
        options["legacy"] = True
    service.start(
        ("legacy_handlers",), backend=backend, extra_env={"LEGACY_CALLS": calls}, **options
    )
    try:  # start() waited for "consuming": the queue is bound by then
        # published as the old emit_microservice_email_notification did: the captured bytes
        # and properties, routing key microservice.notification.email
        for cap in (CAPTURE, VIA_SEND_EMAIL):
            props = {k: v for k, v in cap["amqp"]["properties"].items() if v is not None}
            broker.publish(topic, cap["amqp"]["routing_key"], cap["body"]["raw"].encode(), **props)
        wait_for(lambda: redis_client.llen(calls) == 2, 30, "the two notifications")
        got = [json.loads(raw) for raw in redis_client.lrange(calls, 0, -1)]
        assert sorted(got, key=str) == sorted(
            [
                {"key": "send_email", "method": "POST", "data": CAPTURE["body"]["json"]["kwargs"]},
                {
                    "key": "send_email",
                    "method": "POST",
                    "data": VIA_SEND_EMAIL["body"]["json"]["kwargs"],
                },
            ],
            key=str,
        )
    finally:
        redis_client.delete(calls)


def test_a_notification_no_handler_serves_is_dead_lettered(
    service: Any, broker: Any, topic: str, wait_for: Any
) -> None:
    from zc_events.serving import ERROR_HEADER, QUEUE_HEADER

    # the conformance handlers: no send_email among them
    service.start(backend="rabbitmq_legacy", notifications=["email"], notifications_exchange=topic)
    props = {k: v for k, v in CAPTURE["amqp"]["properties"].items() if v is not None}
    broker.publish(topic, CAPTURE["amqp"]["routing_key"], CAPTURE["body"]["raw"].encode(), **props)
    dead = f"{service.name}.dead"
    wait_for(lambda: broker.count(dead) == 1, 30, "the dead-lettered notification")
    [(dead_props, body)] = broker.get_all(dead)
    assert body == CAPTURE["body"]["raw"].encode()
    assert "no handler for notification 'send_email'" in dead_props.headers[ERROR_HEADER]
    assert dead_props.headers[QUEUE_HEADER] == f"{service.name}-events"
