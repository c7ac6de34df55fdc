"""Legacy notifications through Celery, on the real broker: a real Celery worker set up with
``install(app, notifications=["email"])`` hands the captured ``microservice.notification``
messages of zc_events 0.4.1 to its ``send_email`` handler; the backend publishes them as the old
library did."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

import zc_events_celery
from zc_events import ConfigurationError, EventClient, NoRouteError, Settings, legacy
from zc_events.testing import wait_for
from zc_events_celery.testing import celery_worker, delete_amqp_entities

pytestmark = [pytest.mark.celery, pytest.mark.rabbitmq, pytest.mark.redis]

HERE = Path(__file__).resolve().parent
WIRE = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "legacy-wire"
CAPTURE = json.loads((WIRE / "email_notification.json").read_text())
VIA_SEND_EMAIL = CAPTURE["also_captured_via_send_email"]
BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def names() -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:10]
    out = {
        "service": f"zc-events-test-celery-notify-{tag}",
        "events": f"zc-events-test-celery-fanout-{tag}",
        "notifications": f"zc-events-test-celery-topic-{tag}",
        "default": f"zc-events-test-celery-default-{tag}",
        "calls": f"zc-events-test-celery-calls-{tag}",
    }
    yield out
    delete_amqp_entities(
        BROKER_URL,
        queues=[f"{out['service']}-events", f"{out['service']}.dead", out["default"]],
        exchanges=[out["events"], out["notifications"], out["default"]],
    )
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.delete(out["calls"])
    client.close()


def publish_captured(exchange: str, cap: dict[str, Any]) -> None:
    """Publish a captured notification exactly as the old client did (mandatory, confirmed)."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        props = {k: v for k, v in cap["amqp"]["properties"].items() if v is not None}
        ch.basic_publish(
            exchange,
            cap["amqp"]["routing_key"],
            cap["body"]["raw"].encode(),
            pika.BasicProperties(**props),
            mandatory=True,  # the worker bound its queue before it said "ready"
        )
    finally:
        conn.close()


def test_a_celery_worker_hands_captured_notifications_to_send_email(
    names: dict[str, str],
) -> None:
    import redis

    env = {
        "SERVICE_NAME": names["service"],
        "EVENTS_EXCHANGE": names["events"],
        "NOTIFICATIONS_EXCHANGE": names["notifications"],
        "EVENTS_REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": BROKER_URL,
        "ZC_TEST_DEFAULT_QUEUE": names["default"],
        "ZC_TEST_CALLS": names["calls"],
    }
    with celery_worker(
        "zc_events_celery_notifyapp",
        env=env,
        pythonpath=[str(HERE)],
        queues=[f"{names['service']}-events", names["default"]],
    ) as worker:
        publish_captured(names["notifications"], CAPTURE)
        publish_captured(names["notifications"], VIA_SEND_EMAIL)
        client = redis.Redis.from_url(REDIS_URL)
        try:
            wait_for(lambda: client.llen(names["calls"]) == 2, 30, "the two notifications")
            got = [json.loads(raw) for raw in client.lrange(names["calls"], 0, -1)]
        finally:
            client.close()
        assert sorted(got, key=str) == sorted(
            [
                {"key": "send_email", "data": CAPTURE["body"]["json"]["kwargs"]},
                {"key": "send_email", "data": VIA_SEND_EMAIL["body"]["json"]["kwargs"]},
            ],
            key=str,
        ), worker.output


def test_install_binds_the_events_queue_to_the_notifications_exchange() -> None:
    app = Celery("notify-test", set_as_current=False)
    zc_events_celery.install(
        app,
        service_name="mailer",
        events_exchange="fleet",
        notifications=["email", "text"],
        notifications_exchange="fleet-notifications",
        settings=Settings({}),
    )
    inst = zc_events_celery.installation(app)
    assert inst is not None
    assert inst.exchange == "fleet"
    assert inst.queue.notification_bindings == (
        ("fleet-notifications", "microservice.notification.email"),
        ("fleet-notifications", "microservice.notification.text"),
    )
    assert legacy.NOTIFICATION_TASK in app.tasks
    # the binding survives kombu's copies (a queue is copied when bound to a channel)
    assert inst.queue.bind(None).notification_bindings == inst.queue.notification_bindings


def test_install_without_notifications_registers_no_notification_task() -> None:
    app = Celery("notify-test", set_as_current=False)
    zc_events_celery.install(
        app, service_name="orders", events_exchange="fleet", settings=Settings({})
    )
    assert legacy.NOTIFICATION_TASK not in app.tasks


def test_install_with_notifications_needs_the_exchange() -> None:
    app = Celery("notify-test", set_as_current=False)
    with pytest.raises(ConfigurationError, match="NOTIFICATIONS_EXCHANGE"):
        zc_events_celery.install(
            app,
            service_name="mailer",
            events_exchange="fleet",
            notifications=["email"],
            settings=Settings({}),
        )
    with pytest.raises(ConfigurationError, match="'fax'"):
        zc_events_celery.install(
            app,
            service_name="mailer",
            events_exchange="fleet",
            notifications=["fax"],
            notifications_exchange="n",
            settings=Settings({}),
        )


def test_the_backend_publishes_the_captured_message(names: dict[str, str]) -> None:
    import pika

    queue = f"{names['service']}-old-email"
    conn = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    ch = conn.channel()
    ch.exchange_declare(names["notifications"], "topic", durable=True)
    ch.queue_declare(queue, durable=True)
    ch.queue_bind(queue, names["notifications"], routing_key="microservice.notification.email")
    conn.close()
    try:
        sent = VIA_SEND_EMAIL["body"]["json"]
        message = legacy.notification_message(
            "send_email", (), sent["kwargs"], message_id=sent["id"]
        )
        with EventClient(
            "celery",
            settings=Settings({"NOTIFICATIONS_EXCHANGE": names["notifications"]}),
            url=BROKER_URL,
            redis_url=REDIS_URL,
            events_exchange=names["events"],
        ) as client:
            assert isinstance(client.backend, legacy.NotificationPublisher)
            client.backend.publish_notification("email", message)
            with pytest.raises(NoRouteError, match="text notifications"):
                client.backend.publish_notification("text", message)
        conn = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
        method, props, body = conn.channel().basic_get(queue, auto_ack=True)
        conn.close()
        assert method is not None
        assert method.routing_key == "microservice.notification.email"
        assert body == VIA_SEND_EMAIL["body"]["raw"].encode()
        captured = VIA_SEND_EMAIL["amqp"]["properties"]
        assert {name: getattr(props, name) for name in captured} == captured
        header = pika.frame.Header(1, len(body), props).marshal()
        assert header[7:-1].hex() == VIA_SEND_EMAIL["amqp"]["frames_hex"]["content_header_payload"]
    finally:
        delete_amqp_entities(BROKER_URL, queues=[queue])
