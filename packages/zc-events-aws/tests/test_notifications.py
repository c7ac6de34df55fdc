"""``send_email`` and the other legacy notification helpers on the real broker: with a
legacy-compatible backend the old email service's queue receives the captured message (body
bytes and properties); with the native backend the ``send_email`` key is fired."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from zc_events import (
    ConfigurationError,
    Dispatcher,
    EventClient,
    HandlerRegistry,
    Request,
    Settings,
)
from zc_events_aws import (
    emit_microservice_push_notification,
    emit_microservice_slack_notification,
    emit_microservice_text_notification,
    read_s3_file_as_string,
    send_email,
    send_notification,
)

WIRE = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "legacy-wire"
CAPTURED = json.loads((WIRE / "email_notification.json").read_text())[
    "also_captured_via_send_email"
]
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
REDIS_URL = "redis://127.0.0.1:6379/0"
#: The call the capture was made with (no bodies: nothing goes to S3).
CALL: dict[str, Any] = {
    "from_email": "noreply@example.com",
    "to": "a@example.com,b@example.com",
    "subject": "Hello",
    "user_id": "2",
    "resource_type": "Order",
    "resource_id": "1",
}


def _pika() -> Any:
    pika = pytest.importorskip("pika")
    return pika


@pytest.fixture
def fleet() -> Iterator[dict[str, str]]:
    """Unique exchanges and a queue bound like the old email service's
    (``microservice.notification.#`` on the topic exchange); all deleted afterwards."""
    pika = _pika()
    suffix = uuid.uuid4().hex[:10]
    names = {
        "notifications": f"zc-events-test-notify-{suffix}",
        "events": f"zc-events-test-fanout-{suffix}",
        "queue": f"zc-events-test-old-email-{suffix}",
        "service": f"zc-events-test-sender-{suffix}",
    }
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    ch = conn.channel()
    ch.exchange_declare(names["notifications"], "topic", durable=True)
    ch.queue_declare(names["queue"], durable=True)
    ch.queue_bind(names["queue"], names["notifications"], routing_key="microservice.notification.#")
    conn.close()
    yield names
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    for method, name in [
        ("queue_delete", names["queue"]),
        ("queue_delete", f"{names['service']}-events"),
        ("exchange_delete", names["notifications"]),
        ("exchange_delete", names["events"]),
    ]:
        ch = conn.channel()
        getattr(ch, method)(name)
        ch.close()
    conn.close()


def take(queue: str) -> list[tuple[Any, Any, bytes]]:
    """Every message in ``queue``: (method, properties, body)."""
    pika = _pika()
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    out = []
    try:
        ch = conn.channel()
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return out
            out.append((method, props, body))
    finally:
        conn.close()


ClientFor = Callable[..., EventClient]


@pytest.fixture
def legacy_client(fleet: dict[str, str]) -> Iterator[ClientFor]:
    """``legacy_client(backend)``: a client of a legacy-compatible backend, on ``fleet``."""
    made: list[EventClient] = []

    def make(backend: str = "rabbitmq_legacy", *, notifications: bool = True) -> EventClient:
        options: dict[str, Any] = {"events_exchange": fleet["events"], "redis_url": REDIS_URL}
        if backend == "celery":
            options["url"] = AMQP_URL
        settings = {"SERVICE_NAME": fleet["service"]}
        if notifications:
            settings["NOTIFICATIONS_EXCHANGE"] = fleet["notifications"]
        made.append(EventClient(backend, settings=Settings(settings), **options))
        return made[-1]

    yield make
    for client in made:
        client.close()


def assert_captured_shape(message: tuple[Any, Any, bytes], returned: dict[str, Any]) -> None:
    """The message is the captured one, byte for byte once its uuids and date are the same."""
    pika = _pika()
    method, props, body = message
    assert method.exchange.startswith("zc-events-test-notify-")
    assert method.routing_key == CAPTURED["amqp"]["routing_key"]
    sent = json.loads(body)
    expected = (
        CAPTURED["body"]["raw"]
        .replace(CAPTURED["body"]["json"]["id"], sent["id"])
        .replace(CAPTURED["body"]["json"]["kwargs"]["task_id"], returned["task_id"])
    )
    assert body == expected.encode()
    assert sent["kwargs"] == returned
    captured = CAPTURED["amqp"]["properties"]
    assert {name: getattr(props, name) for name in captured} == captured
    header = pika.frame.Header(1, len(body), props).marshal()
    assert header[7:-1].hex() == CAPTURED["amqp"]["frames_hex"]["content_header_payload"]


@pytest.mark.rabbitmq
@pytest.mark.parametrize("backend", ["rabbitmq_legacy", "celery"])
def test_send_email_reaches_the_old_email_service_as_captured(
    fleet: dict[str, str], legacy_client: ClientFor, backend: str
) -> None:
    if backend == "celery":
        pytest.importorskip("zc_events_celery")
    data = send_email(legacy_client(backend), **CALL)
    messages = take(fleet["queue"])
    assert len(messages) == 1
    assert_captured_shape(messages[0], data)


@pytest.mark.rabbitmq
@pytest.mark.s3
def test_send_email_with_bodies_uploads_then_notifies(
    fleet: dict[str, str], legacy_client: ClientFor, bucket: str
) -> None:
    data = send_email(
        legacy_client(),
        **CALL,
        html_body="<p>Hello</p>",
        plaintext_body="Hello",
        attachments=[("a.txt", "text/plain", b"attached")],
        bucket=bucket,
    )
    [(_method, _props, body)] = take(fleet["queue"])
    kwargs = json.loads(body)["kwargs"]
    assert kwargs == data
    assert read_s3_file_as_string(bucket, kwargs["html_body_key"]) == b"<p>Hello</p>"
    assert read_s3_file_as_string(bucket, kwargs["plaintext_body_key"]) == b"Hello"
    [attachment] = kwargs["attachments_keys"]
    assert read_s3_file_as_string(bucket, attachment) == b"attached"


@pytest.mark.rabbitmq
def test_send_email_needs_notifications_exchange_on_a_legacy_backend(
    fleet: dict[str, str], legacy_client: ClientFor
) -> None:
    client = legacy_client(notifications=False)
    with pytest.raises(ConfigurationError, match="NOTIFICATIONS_EXCHANGE"):
        send_email(client, **CALL)
    assert take(fleet["queue"]) == []


@pytest.mark.rabbitmq
@pytest.mark.parametrize(
    ("helper", "kind"),
    [
        (emit_microservice_text_notification, "text"),
        (emit_microservice_push_notification, "push"),
        (emit_microservice_slack_notification, "slack"),
    ],
)
def test_the_other_kinds_are_published_as_the_old_client_did(
    fleet: dict[str, str], legacy_client: ClientFor, helper: Any, kind: str
) -> None:
    message_id = helper(legacy_client(), "send_sms", to="+15550100", body="Hi", user_id="2")
    [(method, props, body)] = take(fleet["queue"])
    assert method.routing_key == f"microservice.notification.{kind}"
    expected = (
        f'{{"task":"microservice.notification","id":"{message_id}","args":["send_sms"],'
        f'"kwargs":{{"task_id":"{message_id}","to":"+15550100","body":"Hi","user_id":"2"}}}}'
    )
    assert body == expected.encode()
    assert (props.content_type, props.content_encoding, props.priority) == (
        "application/json",
        "utf-8",
        0,
    )
    assert props.delivery_mode is None and props.headers is None


def test_on_a_native_backend_send_email_fires_the_send_email_key() -> None:
    received: list[Request] = []
    registry = HandlerRegistry({"send_email": received.append})
    client = EventClient("memory", dispatcher=Dispatcher([registry]))
    data = send_email(client, **CALL)
    client.backend.join(timeout=10)  # type: ignore[attr-defined]
    client.close()
    assert [r.data for r in received] == [data]
    assert list(received[0].data) == list(CAPTURED["body"]["json"]["kwargs"])


def test_on_a_native_backend_other_kinds_post_to_the_event_type() -> None:
    received: list[Request] = []
    registry = HandlerRegistry({"send_sms": received.append})
    client = EventClient("memory", dispatcher=Dispatcher([registry]))
    message_id = send_notification(client, "text", "send_sms", "extra", to="+1")
    client.backend.join(timeout=10)  # type: ignore[attr-defined]
    client.close()
    [request] = received
    assert request.id == message_id
    assert request.data == {"task_id": request.data["task_id"], "to": "+1"}
    assert request.headers["legacy_args"] == ["extra"]
