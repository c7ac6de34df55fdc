"""Legacy notifications (``microservice.notification``): the codec against the captures of
zc_events 0.4.1, the ``NOTIFICATIONS_EXCHANGE`` setting, and serving through
:class:`zc_events.serving.LegacyServer`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zc_events import (
    ConfigurationError,
    Dispatcher,
    EnvelopeError,
    HandlerRegistry,
    Request,
    Settings,
    legacy,
)
from zc_events.serving import LegacyServer

CAPTURE = json.loads(
    (
        Path(__file__).resolve().parents[3]
        / "tests"
        / "fixtures"
        / "legacy-wire"
        / "email_notification.json"
    ).read_text()
)
VIA_SEND_EMAIL = CAPTURE["also_captured_via_send_email"]


def captured_properties(amqp: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in amqp["properties"].items() if v is not None}


def test_notification_message_is_byte_identical_to_emit_microservice_email_notification() -> None:
    sent = CAPTURE["body"]["json"]
    kwargs = {k: v for k, v in sent["kwargs"].items() if k != "task_id"}
    message = legacy.notification_message("send_email", (), kwargs, message_id=sent["id"])
    assert message.body == CAPTURE["body"]["raw"].encode("utf-8")
    assert len(message.body) == CAPTURE["amqp"]["properties_on_the_wire"]["body_size"]
    assert message.properties == captured_properties(CAPTURE["amqp"])
    assert legacy.notification_routing_key("email") == CAPTURE["amqp"]["routing_key"]


def test_notification_message_is_byte_identical_to_the_old_send_email() -> None:
    sent = VIA_SEND_EMAIL["body"]["json"]
    # send_email passes its email id as task_id: it replaces the message id in first position
    message = legacy.notification_message("send_email", (), sent["kwargs"], message_id=sent["id"])
    assert message.body == VIA_SEND_EMAIL["body"]["raw"].encode("utf-8")
    assert message.properties == captured_properties(VIA_SEND_EMAIL["amqp"])


def test_notification_message_defaults() -> None:
    message = legacy.notification_message("sms", ["x"], {"to": "+1"}, priority=5)
    body = json.loads(message.body)
    assert body["task"] == "microservice.notification"
    assert body["args"] == ["sms", "x"]
    assert body["kwargs"] == {"task_id": body["id"], "to": "+1"}
    assert legacy.is_response_key(body["id"])
    assert message.properties["priority"] == 5


def test_notification_message_refuses_what_is_not_json() -> None:
    with pytest.raises(EnvelopeError, match="'send_email' cannot be encoded as JSON"):
        legacy.notification_message("send_email", (), {"when": object()})
    with pytest.raises(EnvelopeError, match="key"):
        legacy.notification_message("", (), {})


@pytest.mark.parametrize("kind", ["email", "text", "push", "slack"])
def test_routing_keys(kind: str) -> None:
    assert legacy.notification_routing_key(kind) == f"microservice.notification.{kind}"


def test_an_unknown_kind_is_refused_naming_the_kinds() -> None:
    with pytest.raises(ConfigurationError, match="'fax'.*email, text, push, slack"):
        legacy.notification_routing_key("fax")
    with pytest.raises(ConfigurationError, match="option 'notifications'.*'fax'"):
        legacy.notification_kinds(["email", "fax"], who="rabbitmq_legacy backend")
    with pytest.raises(ConfigurationError, match="must be a list"):
        legacy.notification_kinds("email")
    assert legacy.notification_kinds(["email", "text", "email"]) == ("email", "text")
    assert legacy.notification_kinds(None) == ()


def test_notifications_exchange_is_required() -> None:
    with pytest.raises(ConfigurationError, match="NOTIFICATIONS_EXCHANGE.*notifications_exchange="):
        Settings({}).notifications_exchange(who="x backend")
    assert Settings({"NOTIFICATIONS_EXCHANGE": "n"}).notifications_exchange() == "n"
    assert Settings({"NOTIFICATIONS_EXCHANGE": "n"}).notifications_exchange("o") == "o"
    with pytest.raises(ConfigurationError, match="must be a string"):
        Settings({"NOTIFICATIONS_EXCHANGE": 3}).notifications_exchange()


def test_parse_request_reads_notifications_with_their_kwargs_as_data() -> None:
    raw = VIA_SEND_EMAIL["body"]["raw"].encode("utf-8")
    parsed = legacy.parse_request(raw, None)
    assert parsed.task == legacy.NOTIFICATION_TASK
    assert parsed.protocol == 1
    assert parsed.envelope.key == "send_email"
    assert parsed.envelope.id == VIA_SEND_EMAIL["body"]["json"]["id"]
    assert parsed.envelope.data == VIA_SEND_EMAIL["body"]["json"]["kwargs"]
    assert list(parsed.envelope.data) == list(VIA_SEND_EMAIL["body"]["json"]["kwargs"])


def _server(registry: HandlerRegistry) -> LegacyServer:
    def no_redis() -> Any:
        raise AssertionError("a notification gets no reply")

    return LegacyServer(
        Dispatcher([registry], settings=Settings({})), no_redis, settings=Settings({})
    )


def test_legacy_server_dispatches_a_notification_to_the_handler_of_its_event_type() -> None:
    registry = HandlerRegistry()
    got: list[Request] = []
    registry.register("send_email", got.append)
    outcome = _server(registry).serve_body(VIA_SEND_EMAIL["body"]["raw"].encode(), None)
    assert outcome.ack
    assert outcome.reply is None
    assert [r.data for r in got] == [VIA_SEND_EMAIL["body"]["json"]["kwargs"]]
    assert got[0].method == "POST"


def test_legacy_server_dead_letters_a_notification_nobody_here_handles() -> None:
    outcome = _server(HandlerRegistry()).serve_body(CAPTURE["body"]["raw"].encode(), None)
    assert not outcome.ack
    assert outcome.dead_letter is not None
    assert "no handler for notification 'send_email'" in outcome.dead_letter


def test_legacy_server_serves_decoded_notification_tasks() -> None:
    registry = HandlerRegistry()
    got: list[Request] = []
    registry.register("sms", got.append)
    outcome = _server(registry).serve_task(
        ("sms", 1), {"task_id": "t", "to": "+1"}, "t", task=legacy.NOTIFICATION_TASK
    )
    assert outcome.ack
    assert got[0].data == {"task_id": "t", "to": "+1"}
    assert got[0].headers == {legacy.EVENT_ARGS_HEADER: [1]}


def test_a_failing_notification_handler_dead_letters_the_message() -> None:
    registry = HandlerRegistry()

    def broken(request: Request) -> None:
        raise RuntimeError("smtp down")

    registry.register("send_email", broken)
    outcome = _server(registry).serve_body(CAPTURE["body"]["raw"].encode(), None)
    assert not outcome.ack
    assert outcome.error_type == "RuntimeError"
    assert outcome.error_message == "smtp down"
