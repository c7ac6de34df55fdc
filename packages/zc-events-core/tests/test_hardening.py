"""Tracebacks, server logging, size and depth limits, secret masking (issue: hardening)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

import zc_events
from zc_events import (
    ConfigurationError,
    Dispatcher,
    Envelope,
    EnvelopeError,
    EventClient,
    HandlerRegistry,
    Request,
    Response,
    Settings,
    legacy,
    mask_secrets,
)
from zc_events.backends.memory import MemoryBackend


def boom(request: Request) -> None:
    raise KeyError("y")


def ok(request: Request) -> str:
    return "fine"


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    zc_events.reset()
    yield
    zc_events.reset()


def dispatcher(**settings: Any) -> Dispatcher:
    return Dispatcher([HandlerRegistry({"boom": boom, "ok": ok})], settings=Settings(settings))


def test_tracebacks_are_not_sent_by_default_but_always_logged_at_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    d = dispatcher()
    for reply_to in ("r", None):  # waiting and no-wait alike
        caplog.clear()
        envelope = Envelope.create("boom", "PUT", reply_to=reply_to)
        with caplog.at_level(logging.ERROR, logger="zc_events"):
            response = d.dispatch(envelope)
        assert response.errors == [{"type": "KeyError", "message": "'y'"}]
        record = next(r for r in caplog.records if r.levelno == logging.ERROR)
        assert record.exc_info is not None
        text = caplog.text
        assert "PUT 'boom'" in text and envelope.id in text and "Traceback" in text


def test_send_tracebacks_setting() -> None:
    assert (
        "Traceback"
        in dispatcher(ZC_EVENTS_SEND_TRACEBACKS=True)
        .dispatch(Envelope.create("boom", reply_to="r"))
        .errors[0]["trace"]
    )
    assert Settings({"ZC_EVENTS_SEND_TRACEBACKS": "off"}).send_tracebacks is False
    assert Settings({"ZC_EVENTS_SEND_TRACEBACKS": "1"}).send_tracebacks is True
    assert Settings().send_tracebacks is False
    with pytest.raises(ConfigurationError, match="ZC_EVENTS_SEND_TRACEBACKS"):
        _ = Settings({"ZC_EVENTS_SEND_TRACEBACKS": "maybe"}).send_tracebacks
    zc_events.configure(send_tracebacks=True, handlers={"boom": boom})
    assert "Traceback" in zc_events.get("boom").errors[0]["trace"]


def test_one_info_line_per_message_unless_turned_off(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="zc_events"):
        envelope = Envelope.create("ok", "GET", reply_to="r")
        dispatcher().dispatch(envelope)
        failing = Envelope.create("boom", "POST")
        dispatcher().dispatch(failing)
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(info) == 2
    assert info[0].startswith(f"GET 'ok' id {envelope.id} ") and info[0].endswith(" ms ok")
    assert info[1].startswith(f"POST 'boom' id {failing.id} ") and info[1].endswith("KeyError")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="zc_events"):
        dispatcher(ZC_EVENTS_LOG_MESSAGES="0").dispatch(Envelope.create("ok"))
    assert [r for r in caplog.records if r.levelno == logging.INFO] == []


def test_client_refuses_messages_over_the_size_limit_naming_the_claim_check() -> None:
    zc_events.configure(max_message_bytes=1000, handlers={"ok": ok})
    with pytest.raises(
        EnvelopeError, match=r"ZC_EVENTS_MAX_MESSAGE_BYTES \(1000\).*s3_claim_check"
    ):
        zc_events.get("ok", data="x" * 2000)
    with pytest.raises(EnvelopeError, match="s3_claim_check"):
        zc_events.post_no_wait("ok", data="x" * 2000)
    assert zc_events.get("ok", data="x" * 10).data == "fine"


def test_worker_refuses_messages_over_the_size_limit() -> None:
    body = Envelope.create("ok", data="x" * 2000).encode()
    with pytest.raises(EnvelopeError, match="over ZC_EVENTS_MAX_MESSAGE_BYTES"):
        dispatcher(ZC_EVENTS_MAX_MESSAGE_BYTES=1000).handle(body)
    assert Settings().max_message_bytes == 16 * 1024 * 1024
    with pytest.raises(ConfigurationError, match="ZC_EVENTS_MAX_MESSAGE_BYTES"):
        _ = Settings({"ZC_EVENTS_MAX_MESSAGE_BYTES": "lots"}).max_message_bytes


@pytest.mark.parametrize(
    "decode",
    [
        Envelope.decode,
        Response.decode,
        legacy.decode_response,
        lambda raw: legacy.parse_request(raw, {"task": "microservice.event"}),
        lambda raw: legacy.parse_request(raw),
    ],
)
@pytest.mark.parametrize("raw", [b"[" * 200_000, b'{"a":' * 100_000, "[" * 5000])
def test_deep_json_is_an_envelope_error_not_a_recursion_error(decode: Any, raw: Any) -> None:
    with pytest.raises(EnvelopeError, match="deeper than"):
        decode(raw)


def test_json_nested_within_the_limit_and_brackets_in_strings_are_fine() -> None:
    data: Any = "[[[[{{{{" * 100
    for _ in range(150):
        data = [data]
    envelope = Envelope.create("k", data=data)
    assert Envelope.decode(envelope.encode()).data == data


def test_mask_secrets() -> None:
    masked = mask_secrets(
        {
            "secret": "s1",
            "secrets": {"k1": "s2"},
            "password": "p",
            "aws_secret_access_key": "a",
            "api_key": "k",
            "token": "t",
            "authorization": "Bearer x",
            "url": "amqp://user:pa55@host:5672/%2F",
            "nested": [{"credentials": "c"}],
            "bucket": "visible",
            "key": "handler.name",
        }
    )
    assert masked == {
        "secret": "***",
        "secrets": "***",
        "password": "***",
        "aws_secret_access_key": "***",
        "api_key": "***",
        "token": "***",
        "authorization": "***",
        "url": "amqp://user:***@host:5672/%2F",
        "nested": [{"credentials": "***"}],
        "bucket": "visible",
        "key": "handler.name",
    }
    assert "pa55" not in mask_secrets("cannot connect to redis://:pa55@127.0.0.1:6379/0")


def test_settings_errors_do_not_print_secrets() -> None:
    s = Settings({"ZC_EVENTS_MIDDLEWARE_OPTIONS": ["hunter2", "amqp://u:hunter3@h/"]})
    with pytest.raises(ConfigurationError) as info:
        _ = s.middleware_options
    assert "hunter3" not in str(info.value)
    with pytest.raises(ConfigurationError) as info2:
        Settings({"MY_TOKEN": 5}).get_str("MY_TOKEN")
    assert "5" not in str(info2.value).replace("MY_TOKEN", "")


def test_client_with_memory_backend_sends_within_limit() -> None:
    backend = MemoryBackend(dispatcher=dispatcher())
    with EventClient(backend) as client:
        assert client.get("ok").data == "fine"
