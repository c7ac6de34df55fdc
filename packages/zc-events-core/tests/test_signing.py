"""``hmac_signing``: what it covers, rotation, replays, signed replies (memory backend and codec).

The same refusals over real RabbitMQ workers are tested in the rabbitmq package.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

import zc_events
from zc_events import (
    ConfigurationError,
    Dispatcher,
    Envelope,
    EventClient,
    HandlerRegistry,
    HmacSigning,
    Request,
    Response,
    SignatureError,
    ZcEventsError,
    legacy,
)
from zc_events._json import canonical
from zc_events.backends.memory import MemoryBackend

calls: list[Any] = []
RESPONSE_KEY = "2f1c2b9e-0000-4000-8000-000000000000"


def echo(request: Request) -> Any:
    calls.append(request.data)
    return {"data": request.data, "headers": request.headers}


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    zc_events.reset()
    calls.clear()
    yield
    zc_events.reset()


def server(signer: HmacSigning | None) -> Dispatcher:
    return Dispatcher([HandlerRegistry({"echo": echo})], [signer] if signer else [])


def signed(signer: HmacSigning, **fields: Any) -> Envelope:
    envelope = Envelope.create("echo", "GET", {"x": 1e-7, "s": "é"}, {"pk": "1"}, timeout=30)
    envelope.reply_to = "reply-here"
    return signer.outgoing_request(envelope)


def answer(dispatcher: Dispatcher, envelope: Envelope) -> Response:
    raw = dispatcher.handle(envelope.encode())
    assert raw is not None
    return Response.decode(raw)


def test_signature_error_is_exported_and_a_zc_events_error() -> None:
    assert issubclass(zc_events.SignatureError, ZcEventsError)
    assert issubclass(SignatureError, PermissionError)


def test_a_signed_call_round_trips_and_the_handler_does_not_see_the_signature() -> None:
    signer = HmacSigning("s3cret")
    with EventClient(
        MemoryBackend(dispatcher=server(HmacSigning("s3cret"))), middleware=[signer]
    ) as c:
        response = c.get("echo", data={"n": 1}, headers={"pk": "7"})
    assert response.data == {"data": {"n": 1}, "headers": {"pk": "7"}}
    assert response.signature is not None and response.signature["kid"] == "default"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("data", {"x": 2}),
        ("key", "other"),
        ("method", "DELETE"),
        ("headers", {"pk": "2"}),
        ("reply_to", "someone-elses-queue"),
        ("deadline", time.time() + 3600),
        ("priority", 9),
        ("sent_at", 1.0),
        ("id", "6f1c2b9e-0000-4000-8000-000000000000"),
    ],
    ids=lambda value: value if isinstance(value, str) else type(value).__name__,  # stable (-n)
)
def test_every_field_is_covered(field: str, value: Any, caplog: pytest.LogCaptureFixture) -> None:
    envelope = signed(HmacSigning("s3cret"))
    if field == "headers":
        value = {**value, "x-zc-signature": envelope.headers["x-zc-signature"]}
    tampered = dataclasses.replace(envelope, **{field: value})
    dispatcher = Dispatcher(
        [HandlerRegistry({"echo": echo, "other": echo})], [HmacSigning("s3cret")]
    )
    with caplog.at_level(logging.WARNING, logger="zc_events.signing"):
        response = answer(dispatcher, tampered)
    assert response.errors[0]["type"] == "SignatureError", response.errors
    assert calls == []  # the handler never ran
    assert tampered.id in caplog.text and repr(tampered.key) in caplog.text
    assert "s3cret" not in caplog.text


def test_unsigned_and_wrongly_signed_requests_never_reach_the_handler() -> None:
    dispatcher = server(HmacSigning("s3cret"))
    unsigned = Envelope.create("echo", data=1, timeout=5, reply_to="r")
    response = answer(dispatcher, unsigned)
    assert (response.errors[0]["type"], "not signed" in response.errors[0]["message"]) == (
        "SignatureError",
        True,
    )
    wrong = signed(HmacSigning("other secret"))
    assert "bad signature" in answer(dispatcher, wrong).errors[0]["message"]
    assert calls == []


def test_the_same_message_is_handled_once() -> None:
    dispatcher = server(HmacSigning("s3cret"))
    envelope = signed(HmacSigning("s3cret"))
    assert answer(dispatcher, envelope).ok
    again = answer(dispatcher, envelope)
    assert again.errors[0]["type"] == "SignatureError"
    assert "already handled" in again.errors[0]["message"]
    assert len(calls) == 1


def test_a_waiting_request_past_its_signed_deadline_is_refused() -> None:
    signer = HmacSigning("s3cret")
    envelope = Envelope.create("echo", data=1, timeout=30, reply_to=RESPONSE_KEY)
    envelope.deadline = time.time() - 1  # signed with a deadline that has passed
    envelope = signer.outgoing_request(envelope)
    # The legacy wire carries no deadline: the signed one is restored and enforced.
    message = legacy.build_request(envelope, RESPONSE_KEY)
    request = legacy.parse_request(message.body, message.properties["headers"])
    dispatcher = server(HmacSigning("s3cret"))
    response = dispatcher.dispatch(request.envelope)
    assert "past its signed deadline" in response.errors[0]["message"]
    assert calls == []


def test_a_no_wait_message_that_waited_for_hours_is_accepted() -> None:
    signer = HmacSigning("s3cret")
    envelope = Envelope.create("echo", data=1)
    envelope.sent_at -= 6 * 3600
    envelope = signer.outgoing_request(envelope)
    assert server(HmacSigning("s3cret")).handle(envelope.encode()) is None
    assert calls == [1]


def test_replay_memory_is_bounded() -> None:
    signer = HmacSigning("s3cret", replay_cache_size=10)
    dispatcher = server(signer)
    for _ in range(50):
        assert dispatcher.dispatch(signed(HmacSigning("s3cret"))).ok
    assert len(signer._seen) <= 10


def test_signature_is_independent_of_the_json_library() -> None:
    """orjson writes 1e-07, the standard library 1e-7, ujson something else again: the signed
    form is the same whichever library encoded and decoded the message."""
    orjson = pytest.importorskip("orjson")
    ujson = pytest.importorskip("ujson")
    value = {"f": [1e-7, 1e16, 0.1, 2.5e-308, 1.0], "s": "é\u2028/\x7f😀", "n": None, "b": True}
    encoders = {
        "json": lambda v: json.dumps(v).encode(),
        "orjson": orjson.dumps,
        "ujson": lambda v: ujson.dumps(v).encode(),
    }
    decoders = {"json": json.loads, "orjson": orjson.loads, "ujson": ujson.loads}
    wire = {name: enc(value) for name, enc in encoders.items()}
    assert len(set(wire.values())) > 1  # the libraries do disagree on the bytes
    forms = {canonical(dec(raw)) for raw in wire.values() for dec in decoders.values()}
    assert forms == {canonical(value)}
    # And a whole signed message encoded by orjson verifies after a stdlib decode.
    envelope = signed(HmacSigning("s3cret"))
    back = Envelope.from_dict(json.loads(orjson.dumps(envelope.to_dict())))
    assert server(HmacSigning("s3cret")).dispatch(back).ok


def test_key_rotation_first_key_signs_every_key_verifies() -> None:
    old, new = "old-secret", "new-secret"
    step1 = HmacSigning(secrets={"k1": old, "k2": new})  # deployed everywhere first
    step2 = HmacSigning(secrets={"k2": new, "k1": old})  # then signing moves to k2
    step3 = HmacSigning(secrets={"k2": new})  # finally k1 is removed
    for sender, receiver in [(step1, step2), (step2, step1), (step2, step3), (step3, step2)]:
        assert server(receiver).dispatch(signed(sender)).ok
    refused = server(step3).dispatch(signed(step1))
    assert "unknown key id 'k1'" in refused.errors[0]["message"]


def test_replies_are_signed_and_verified() -> None:
    # A server without signing answers: the signing client refuses the unsigned reply.
    with (
        EventClient(MemoryBackend(dispatcher=server(None)), middleware=[HmacSigning("s")]) as c,
        pytest.raises(SignatureError, match="is not signed"),
    ):
        c.get("echo", data=1)
    # A server with another secret under the same key id: a forged reply.

    class Accepting(HmacSigning):
        def incoming_request(self, envelope: Envelope) -> Envelope:
            envelope.headers.pop(self.header, None)
            return envelope

    with (
        EventClient(
            MemoryBackend(dispatcher=server(Accepting("not the secret"))),
            middleware=[HmacSigning("s")],
        ) as c,
        pytest.raises(SignatureError, match="bad signature"),
    ):
        c.get("echo", data=1)


def test_a_reply_cannot_be_changed_or_moved_to_another_request() -> None:
    signer = HmacSigning("s")
    envelope = signed(signer)
    reply = server(HmacSigning("s")).dispatch(envelope)
    assert signer.incoming_response(envelope, Response.decode(reply.encode())) is not None
    changed = Response.decode(reply.encode())
    changed.data = {"data": "evil"}
    with pytest.raises(SignatureError):
        signer.incoming_response(envelope, changed)
    other = signed(signer)
    with pytest.raises(SignatureError):
        signer.incoming_response(other, Response.decode(reply.encode()))


def test_legacy_wire_carries_the_signature_and_the_reply_signature() -> None:
    signer = HmacSigning("s3cret")
    envelope = Envelope.create("echo", "GET", {"x": 1}, timeout=30, priority=3)
    envelope.reply_to = "2f1c2b9e-0000-4000-8000-000000000000"
    envelope = signer.outgoing_request(envelope)
    message = legacy.build_request(envelope, envelope.reply_to)
    request = legacy.parse_request(message.body, message.properties["headers"])
    assert request.envelope.priority == 9  # the legacy wire's own priority, not the sender's
    response = server(HmacSigning("s3cret")).dispatch(request.envelope)
    assert response.ok and response.data["data"] == {"x": 1}
    # The reply goes back in the legacy form; old clients ignore "signature", and the empty
    # "trace" added for them does not break the signature.
    raw = legacy.encode_response(response)
    assert json.loads(raw)["signature"]["kid"] == "default"
    assert signer.incoming_response(envelope, legacy.decode_response(raw)).ok
    # The same legacy message again is a replay.
    receiver = server(HmacSigning("s3cret"))
    assert receiver.dispatch(
        legacy.parse_request(message.body, message.properties["headers"]).envelope
    ).ok
    replayed = receiver.dispatch(
        legacy.parse_request(message.body, message.properties["headers"]).envelope
    )
    assert "already handled" in replayed.errors[0]["message"]


def test_error_replies_to_the_legacy_wire_keep_an_empty_trace() -> None:
    raw = legacy.encode_response(Response.error("KeyError", "'y'"))
    assert json.loads(raw)["errors"] == [{"type": "KeyError", "message": "'y'", "trace": ""}]
    assert legacy.decode_response(raw).errors == [{"type": "KeyError", "message": "'y'"}]


def test_options_are_checked_and_secrets_never_printed() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        HmacSigning("a", secrets={"k": "b"})
    with pytest.raises(ConfigurationError, match="non-empty 'secret' for key id 'k'"):
        HmacSigning(secrets={"k": ""})
    with pytest.raises(ConfigurationError) as info:
        zc_events.configure(
            middleware=["hmac_signing"],
            middleware_options={"hmac_signing": {"secrte": "hunter2-value"}},
        )
    assert "secrte" in str(info.value) and "hunter2-value" not in str(info.value)
    assert "hunter2" not in repr(HmacSigning("hunter2"))


async def test_async_client_signs_and_verifies() -> None:
    from zc_events import AsyncEventClient
    from zc_events.backends.memory import AsyncMemoryBackend

    def signed_server() -> AsyncMemoryBackend:
        return AsyncMemoryBackend(dispatcher=server(HmacSigning("s3cret")))

    async with AsyncEventClient(signed_server(), middleware=[HmacSigning("s3cret")]) as client:
        response = await client.get("echo", data={"f": 1e-7})
        assert response.ok and response.signature is not None
    async with AsyncEventClient(signed_server(), middleware=[]) as unsigned:
        refused = await unsigned.get("echo", data=1)
        assert refused.errors[0]["type"] == "SignatureError"
    plain_server = AsyncMemoryBackend(dispatcher=server(None))
    async with AsyncEventClient(plain_server, middleware=[HmacSigning("s3cret")]) as client:
        with pytest.raises(SignatureError, match="is not signed"):
            await client.get("echo", data=1)


class Tracing(zc_events.Middleware):
    """Adds a header, as the opentelemetry middleware does."""

    def outgoing_request(self, envelope: Envelope) -> Envelope:
        envelope.headers = {**envelope.headers, "traceparent": "00-abc-def-01"}
        return envelope


def test_header_adding_middleware_goes_before_signing() -> None:
    before = [Tracing(), HmacSigning("s3cret")]
    backend = MemoryBackend(dispatcher=Dispatcher([HandlerRegistry({"echo": echo})], before))
    with EventClient(backend, middleware=before) as client:
        assert client.get("echo").data["headers"] == {"traceparent": "00-abc-def-01"}
    after = [HmacSigning("s3cret"), Tracing()]
    backend = MemoryBackend(dispatcher=Dispatcher([HandlerRegistry({"echo": echo})], after))
    with EventClient(backend, middleware=after) as client:
        refused = client.get("echo")
    assert "bad signature" in refused.errors[0]["message"]
