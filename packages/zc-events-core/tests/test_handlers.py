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
    Middleware,
    Request,
    Response,
)
from zc_events.backends.memory import MemoryBackend


def double(request: Request) -> int:
    return int(request.data) * 2


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    zc_events.reset()
    yield
    zc_events.reset()
    zc_events.handlers.unregister("tests.decorated")


def test_decorator_registers_in_process_registry() -> None:
    @zc_events.handler("tests.decorated")
    def decorated(request: Request) -> str:
        return f"{request.method} {request.key} {request.data}"

    assert "tests.decorated" in zc_events.handlers
    assert zc_events.put("tests.decorated", data=1).data == "PUT tests.decorated 1"


def test_settings_handlers_accept_dotted_paths_and_job_mapping() -> None:
    path = f"{__name__}.double"
    zc_events.configure(handlers={"double": path}, JOB_MAPPING={"legacy_double": path})
    assert zc_events.get("double", data=21).data == 42
    assert zc_events.get("legacy_double", data=4).data == 8


def test_bad_dotted_path_is_an_error_response_naming_it() -> None:
    zc_events.configure(handlers={"broken": "no_such_module.handler"})
    response = zc_events.get("broken")
    assert response.has_errors
    assert response.errors[0]["type"] == "ConfigurationError"
    assert "no_such_module" in response.errors[0]["message"]


def test_registry_rejects_non_callables() -> None:
    with pytest.raises(ConfigurationError, match="must be a callable or a dotted path"):
        HandlerRegistry({"x": 42})
    with pytest.raises(EnvelopeError):
        HandlerRegistry({"": double})


def test_adapters_turn_objects_into_handlers() -> None:
    class View:
        answer = 7

    def adapt(obj: Any) -> Any:
        if isinstance(obj, type) and issubclass(obj, View):
            return lambda request: obj.answer
        return None

    HandlerRegistry.add_adapter(adapt)
    try:
        registry = HandlerRegistry({"view": View})
        assert Dispatcher([registry]).dispatch(Envelope.create("view")).data == 7
    finally:
        HandlerRegistry.adapters.remove(adapt)


def test_dispatch_skips_expired_and_no_wait_gets_no_reply(caplog: pytest.LogCaptureFixture) -> None:
    registry = HandlerRegistry({"double": double})
    dispatcher = Dispatcher([registry])
    expired = Envelope.create("double", data=1, timeout=1, reply_to="r")
    expired.deadline = 1.0
    with caplog.at_level(logging.WARNING, logger="zc_events"):
        assert dispatcher.handle(expired.encode()) is None
    assert "deadline passed" in caplog.text
    no_wait = Envelope.create("double", data=1)
    assert dispatcher.handle(no_wait.encode()) is None
    waiting = Envelope.create("double", data=1, reply_to="r")
    assert Response.decode(dispatcher.handle(waiting.encode()) or b"").data == 2


def test_dispatch_raises_envelope_error_for_poison() -> None:
    with pytest.raises(EnvelopeError):
        Dispatcher().handle(b"\x00garbage")


def test_no_wait_failures_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    dispatcher = Dispatcher([HandlerRegistry({"double": double})])
    with caplog.at_level(logging.ERROR, logger="zc_events"):
        dispatcher.handle(Envelope.create("double", data="not a number").encode())
    assert "no-wait POST 'double'" in caplog.text and "ValueError" in caplog.text


class Recorder(Middleware):
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def outgoing_request(self, envelope: Envelope) -> Envelope:
        self.log.append(f"{self.name}:out-req")
        envelope.headers["trail"] = [*envelope.headers.get("trail", []), self.name]
        return envelope

    def incoming_request(self, envelope: Envelope) -> Envelope:
        self.log.append(f"{self.name}:in-req")
        return envelope

    def outgoing_response(self, envelope: Envelope, response: Response) -> Response:
        self.log.append(f"{self.name}:out-resp")
        return response

    def incoming_response(self, envelope: Envelope, response: Response) -> Response:
        self.log.append(f"{self.name}:in-resp")
        response.data = {"wrapped": response.data}
        return response


def test_middleware_runs_on_both_sides_in_order() -> None:
    log: list[str] = []
    a, b = Recorder(log, "a"), Recorder(log, "b")
    registry = HandlerRegistry({"trail": lambda request: request.headers["trail"]})
    backend = MemoryBackend(dispatcher=Dispatcher([registry], [a, b]))
    with EventClient(backend, middleware=[a, b]) as client:
        assert client.get("trail").data == {"wrapped": {"wrapped": ["a", "b"]}}
    assert log == [
        "a:out-req",
        "b:out-req",
        "b:in-req",
        "a:in-req",
        "a:out-resp",
        "b:out-resp",
        "b:in-resp",
        "a:in-resp",
    ]


def test_hmac_signing_by_entry_point_name() -> None:
    zc_events.configure(
        handlers={"double": double},
        middleware=["hmac_signing"],
        middleware_options={"hmac_signing": {"secret": "s3cret"}},
    )
    assert zc_events.get("double", data=2).data == 4
    # A caller without the secret is refused with a named error.
    unsigned = EventClient(
        MemoryBackend(dispatcher=zc_events.default_client().backend.default_dispatcher()),
        middleware=[],
    )
    response = unsigned.get("double", data=2)
    assert response.errors[0]["type"] == "SignatureError"
    assert "not signed" in response.errors[0]["message"]
    unsigned.close()


def test_middleware_misconfiguration_is_named() -> None:
    with pytest.raises(
        ConfigurationError, match="no middleware named 'hmac_signin'.*Did you mean 'hmac_signing'"
    ):
        zc_events.configure(middleware=["hmac_signin"])
    zc_events.reset()
    with pytest.raises(ConfigurationError, match="hmac_signing needs a non-empty 'secret'"):
        zc_events.configure(
            middleware=["hmac_signing"], middleware_options={"hmac_signing": {"secret": ""}}
        )


class Compress(Middleware):
    """Rewrites the body in transit, as the S3 claim check does."""

    def outgoing_request(self, envelope: Envelope) -> Envelope:
        envelope.data = {"packed": envelope.data}
        return envelope

    def incoming_request(self, envelope: Envelope) -> Envelope:
        envelope.data = envelope.data["packed"]
        return envelope


@pytest.mark.parametrize("order", ["sign-first", "sign-last"])
def test_signing_composes_with_a_body_rewriting_middleware(order: str) -> None:
    from zc_events import HmacSigning

    chain = [HmacSigning("k"), Compress()]
    if order == "sign-last":
        chain.reverse()
    backend = MemoryBackend(dispatcher=Dispatcher([HandlerRegistry({"double": double})], chain))
    with EventClient(backend, middleware=chain) as client:
        response = client.get("double", data=5)
    assert (response.data, response.errors) == (10, [])


def test_eventclient_uses_configured_settings_by_default() -> None:
    zc_events.configure(timeout=4, handlers={"double": f"{__name__}.double"})
    with EventClient() as client:
        assert client.timeout == 4.0
        assert client.get("double", data=1).data == 2
