"""Property tests: every decoder of untrusted bytes returns a value or raises EnvelopeError,
never anything else (no TypeError, KeyError, RecursionError, UnicodeError, ...)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zc_events import Envelope, EnvelopeError, Response, _json, legacy

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)

FIELDS = ["v", "id", "key", "method", "data", "headers", "reply_to", "deadline", "priority"]
envelope_like = st.dictionaries(
    st.sampled_from([*FIELDS, "sent_at", "extra"]),
    json_values | st.sampled_from([1, "GET", "POST", "k", "2f1c2b9e", 0.5, {}]),
    max_size=11,
)
response_like = st.dictionaries(
    st.sampled_from(["data", "has_errors", "errors", "status", "signature", "x"]),
    json_values | st.lists(json_values | st.dictionaries(st.text(max_size=5), json_values)),
)
legacy_payload = st.fixed_dictionaries(
    {},
    optional={
        "data": json_values,
        "id": json_values | st.text(min_size=1, max_size=8),
        "headers": json_values,
        "response_key": json_values,
        "_backend": json_values | st.fixed_dictionaries({}, optional={"method": json_values}),
    },
)
legacy_body = st.tuples(
    st.lists(json_values | st.text(min_size=1, max_size=5), max_size=3).flatmap(
        lambda args: st.just(args) | legacy_payload.map(lambda p: [*args[:1], p])
    ),
    json_values,
    json_values,
).map(list)

DECODERS: dict[str, Callable[[bytes], Any]] = {
    "Envelope.decode": Envelope.decode,
    "Response.decode": Response.decode,
    "legacy.decode_response": legacy.decode_response,
    "legacy.parse_request protocol 2": lambda raw: legacy.parse_request(
        raw, {"task": "microservice.event", "id": "t-1"}
    ),
    "legacy.parse_request protocol 1": lambda raw: legacy.parse_request(raw),
}


@pytest.fixture(params=["installed", "stdlib"])
def json_library(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run with the installed JSON library (orjson in the test env) and with the standard
    library, whose decoder recurses (a RecursionError without the depth limit)."""
    if request.param == "stdlib":
        monkeypatch.setattr(_json, "loads", json.loads)
    return str(request.param)


fuzz = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


def accepts_or_envelope_error(decode: Callable[[bytes], Any], raw: bytes | str) -> None:
    with contextlib.suppress(EnvelopeError):
        decode(raw)


@pytest.mark.parametrize("name", DECODERS)
@fuzz
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes(name: str, raw: bytes, json_library: str) -> None:
    accepts_or_envelope_error(DECODERS[name], raw)


@pytest.mark.parametrize("name", DECODERS)
@fuzz
@given(value=json_values)
def test_arbitrary_json(name: str, value: Any) -> None:
    accepts_or_envelope_error(DECODERS[name], json.dumps(value).encode())


@fuzz
@given(value=envelope_like)
def test_envelope_like_objects(value: Any) -> None:
    accepts_or_envelope_error(Envelope.decode, json.dumps(value).encode())


@fuzz
@given(value=response_like)
def test_response_like_objects(value: Any) -> None:
    accepts_or_envelope_error(Response.decode, json.dumps(value))
    accepts_or_envelope_error(legacy.decode_response, json.dumps(value))


@fuzz
@given(body=legacy_body, task=st.sampled_from(["microservice.event", "other"]))
def test_legacy_task_bodies(body: Any, task: str) -> None:
    raw = json.dumps(body).encode()
    accepts_or_envelope_error(lambda r: legacy.parse_request(r, {"task": task}), raw)
    protocol1 = {"task": task, "id": "t", "args": body[0], "kwargs": body[1]}
    accepts_or_envelope_error(legacy.parse_request, json.dumps(protocol1).encode())


@fuzz
@given(args=json_values, kwargs=json_values)
def test_legacy_parse_task(args: Any, kwargs: Any) -> None:
    accepts_or_envelope_error(lambda _: legacy.parse_task(args, kwargs), b"")


@pytest.mark.parametrize("name", DECODERS)
@pytest.mark.parametrize(
    "raw",
    [b"[" * 200_000, b'{"a":' * 50_000, b"\xff\xfe", b'"\\ud800"', b"1e999999", b"-" * 10],
)
def test_hostile_inputs(name: str, raw: bytes, json_library: str) -> None:
    accepts_or_envelope_error(DECODERS[name], raw)


def test_memory_worker_survives_a_thousand_fuzzed_bodies() -> None:
    """Straight into the memory backend's worker queue, then a valid call (not inline)."""
    from zc_events import Dispatcher, EventClient, HandlerRegistry
    from zc_events.backends.memory import MemoryBackend
    from zc_events.testing import fuzz_bodies

    backend = MemoryBackend(
        dispatcher=Dispatcher([HandlerRegistry({"add": lambda r: r.data["x"] + r.data["y"]})]),
        inline=False,
        workers=2,
    )
    with EventClient(backend) as client:
        assert client.get("add", data={"x": 1, "y": 1}).data == 2  # starts the workers
        bodies = fuzz_bodies(1000, seed=11)
        with backend._idle:
            backend._pending += len(bodies)
        for body in bodies:
            backend._queue.put((body, None))
        assert backend.join(timeout=300)
        assert client.get("add", data={"x": 1, "y": 2}, timeout=60).data == 3
