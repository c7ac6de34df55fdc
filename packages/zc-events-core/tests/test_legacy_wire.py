"""Golden tests of the legacy zc_events 0.4 wire codec against captures from the old library."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import zc_events
from zc_events import Envelope, EnvelopeError, RequestTimeout, Response, legacy, legacy_redis

#: Golden captures recorded from zc_events 0.4.1, kept at the repository root.
CAPTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "legacy-wire"


def capture(name: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((CAPTURES / name).read_text())
    return result


def captured_envelope(cap: dict[str, Any]) -> tuple[Envelope, str | None]:
    """The envelope (and response key) that the captured legacy call was made with."""
    (key, payload), _, _ = cap["body"]["json"]
    env = Envelope(
        key,
        payload["_backend"]["method"],
        payload["data"],
        payload["headers"],
        payload["id"],
    )
    return env, payload["response_key"]


@pytest.mark.parametrize("name", ["get_request.json", "post_no_wait_request.json"])
def test_build_request_is_byte_identical_to_the_old_client(name: str) -> None:
    cap = capture(name)
    env, response_key = captured_envelope(cap)
    message = legacy.build_request(env, response_key)
    assert message.body == cap["body"]["raw"].encode("utf-8")
    assert len(message.body) == cap["body"]["length_bytes"]
    expected = {k: v for k, v in cap["amqp"]["properties"].items() if v is not None}
    assert message.properties == expected
    # Header order matters for the wire bytes of the AMQP header table.
    assert list(message.properties["headers"]) == list(cap["amqp"]["properties"]["headers"])
    assert legacy.build_payload(env, response_key) == cap["body"]["json"][0][1]


@pytest.mark.parametrize(
    "name",
    ["get_request.json", "post_no_wait_request.json", "emit_event.json", "email_notification.json"],
)
def test_dumps_legacy_reproduces_captured_bodies(name: str) -> None:
    cap = capture(name)
    assert legacy.dumps_legacy(cap["body"]["json"]) == cap["body"]["raw"].encode("utf-8")


@pytest.mark.parametrize("name", ["response_success.json", "response_error.json"])
def test_encode_response_matches_the_old_worker(name: str) -> None:
    cap = capture(name)
    value = cap["value_json"]
    response = Response(value["data"], value["has_errors"], value["errors"])
    assert legacy.encode_response(response) == cap["value_raw"].encode("utf-8")


def test_decode_response_reads_the_old_workers_replies() -> None:
    ok = legacy.decode_response(capture("response_success.json")["value_raw"])
    assert (ok.data, ok.has_errors, ok.errors) == (3, False, [])
    failed = legacy.decode_response(capture("response_error.json")["value_raw"].encode())
    assert failed.data is None and failed.has_errors
    assert failed.errors[0]["type"] == "KeyError"
    assert failed.errors[0]["message"] == "'y'"
    assert "/app/harness/legacy_tasks.py" in failed.errors[0]["trace"]


def test_dumps_legacy_escapes_like_ujson() -> None:
    assert legacy.dumps_legacy({"b": "é/x", "a": [1.0, 1e-05, None]}) == (
        b'{"b":"\\u00e9\\/x","a":[1.0,1e-5,null]}'
    )
    assert legacy.dumps_legacy("\x7f\\u007f e-05") == b'"\x7f\\\\u007f e-05"'
    assert legacy.dumps_legacy("😀") == b'"\\ud83d\\ude00"'
    with pytest.raises(TypeError):
        legacy.dumps_legacy({"x": float("nan")})
    with pytest.raises(TypeError):
        legacy.dumps_legacy({"x": object()})


def test_dumps_legacy_agrees_with_ujson_on_random_values() -> None:
    ujson = pytest.importorskip("ujson")
    rng = random.Random(5)
    alphabet = ["a", "\\", '"', "/", "\x7f", "e", "-", "0", "é", "😀", "\n", "1"]

    def value(depth: int = 0) -> Any:
        r = rng.random()
        if depth > 3 or r < 0.3:
            return rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30)
        if r < 0.5:
            return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        if r < 0.6:
            return rng.randint(-(10**18), 10**18)
        if r < 0.8:
            return [value(depth + 1) for _ in range(rng.randint(0, 4))]
        return {"".join(rng.choices(alphabet, k=3)): value(depth + 1) for _ in range(3)}

    for _ in range(2000):
        obj = value()
        assert legacy.dumps_legacy(obj) == ujson.dumps(obj).encode("utf-8"), obj


def test_build_request_rejects_non_json_data() -> None:
    env = Envelope.create("add", data={"x": object()})
    with pytest.raises(EnvelopeError, match="'add'"):
        legacy.build_request(env, None)


def test_build_request_caps_argsrepr() -> None:
    env = Envelope.create("big", data="x" * 100_000)
    message = legacy.build_request(env, str(uuid.uuid4()))
    assert len(message.properties["headers"]["argsrepr"]) == legacy.ARGSREPR_MAXSIZE
    assert message.properties["headers"]["argsrepr"].endswith("...")
    assert json.loads(message.body)[0][1]["data"] == "x" * 100_000


@pytest.mark.parametrize("name", ["get_request.json", "post_no_wait_request.json"])
def test_parse_request_reads_the_old_clients_messages(name: str) -> None:
    cap = capture(name)
    parsed = legacy.parse_request(cap["body"]["raw"], cap["amqp"]["properties"]["headers"])
    (key, payload), _, _ = cap["body"]["json"]
    assert parsed.protocol == 2
    assert parsed.task == legacy.EVENT_TASK
    assert parsed.response_key == payload["response_key"]
    env = parsed.envelope
    assert (env.key, env.method, env.data, env.headers, env.id) == (
        key,
        payload["_backend"]["method"],
        {"x": 1, "y": 2},
        {},
        payload["id"],
    )
    assert env.reply_to == payload["response_key"]
    assert env.deadline is None


def test_parse_request_round_trips_build_request() -> None:
    env = Envelope.create(
        "orders.update", "PATCH", {"note": "café/1"}, {"pk": 7, "user_id": "u"}, priority=3
    )
    rk = str(uuid.uuid4())
    message = legacy.build_request(env, rk)
    parsed = legacy.parse_request(message.body, message.properties["headers"])
    assert parsed.response_key == rk
    got = parsed.envelope
    assert (got.key, got.method, got.data, got.headers, got.id, got.reply_to) == (
        env.key,
        env.method,
        env.data,
        env.headers,
        env.id,
        rk,
    )


@pytest.mark.parametrize(
    "response_key", ["other-service:session:42", "", "rk", 7, ["x"], "d4eb82b4-6f00-40cc-b28c"]
)
def test_a_response_key_that_is_not_a_uuid_is_refused(response_key: object) -> None:
    """A sender must not make a worker RPUSH/EXPIRE an arbitrary Redis key."""
    payload = legacy.build_payload(Envelope.create("add"), None)
    payload["response_key"] = response_key
    with pytest.raises(EnvelopeError, match="response_key' must be a UUID"):
        legacy.parse_task(["add", payload], {})


def test_parse_request_reads_protocol_1_events() -> None:
    cap = capture("emit_event.json")
    parsed = legacy.parse_request(cap["body"]["raw"].encode("utf-8"), None)
    assert parsed.protocol == 1
    assert parsed.task == legacy.EVENT_TASK
    assert parsed.response_key is None
    env = parsed.envelope
    assert env.key == "some_event"
    assert env.method == "POST"
    assert env.data == {"resource_type": "Order", "resource_id": "1", "user_id": "2"}
    assert env.id == cap["body"]["json"]["id"]
    assert env.reply_to is None


def test_parse_request_names_the_task_of_notifications() -> None:
    cap = capture("email_notification.json")
    parsed = legacy.parse_request(cap["body"]["raw"])
    assert parsed.task == "microservice.notification"
    assert parsed.envelope.key == "send_email"
    # data = the kwargs, task_id included (send_email's email id travels there)
    assert parsed.envelope.data == cap["body"]["json"]["kwargs"]


def test_parse_task_keeps_extra_event_args() -> None:
    parsed = legacy.parse_task(["evt", 1, "two"], {"a": 1}, task_id="t-1")
    assert parsed.envelope.headers == {legacy.EVENT_ARGS_HEADER: [1, "two"]}
    assert parsed.envelope.data == {"a": 1}
    assert parsed.envelope.id == "t-1"


@pytest.mark.parametrize(
    ("body", "headers", "match"),
    [
        (b"not json", None, "not valid JSON"),
        (b"[1, 2]", None, "has no task"),
        (b"[[], {}, {}]", {"task": legacy.EVENT_TASK}, "non-empty args"),
        (b'[["add"]]', {"task": legacy.EVENT_TASK}, r"\[args, kwargs, embed\]"),
        (b'[["", {"_backend": {}}], {}, {}]', {"task": legacy.EVENT_TASK}, "key must not be empty"),
        (
            b'[["add", {"id": "i", "_backend": {"method": "BREW"}}], {}, {}]',
            {"task": legacy.EVENT_TASK},
            "_backend.method",
        ),
        (
            b'[["add", {"id": "i", "headers": [], "_backend": {}}], {}, {}]',
            {"task": legacy.EVENT_TASK},
            "'headers'",
        ),
        (b'[["add", {"response_key": null}], {}, {}]', {"task": legacy.EVENT_TASK}, "'id'"),
        (b'{"task": "microservice.event", "args": ["evt"], "kwargs": {}}', None, "no task id"),
    ],
)
def test_parse_request_rejects_malformed_messages(
    body: bytes, headers: dict[str, Any] | None, match: str
) -> None:
    with pytest.raises(EnvelopeError, match=match):
        legacy.parse_request(body, headers)


def test_encode_response_turns_non_json_results_into_errors() -> None:
    reply = legacy.decode_response(legacy.encode_response(Response({"x": object()}), key="k.x"))
    assert reply.has_errors
    assert reply.errors[0]["type"] == "TypeError"
    assert "handler for 'k.x'" in reply.errors[0]["message"]


@pytest.fixture
def redis_client() -> Any:
    redis = pytest.importorskip("redis")
    client = redis.Redis(host="127.0.0.1", port=6379, db=0, socket_timeout=0.5)
    yield client
    client.close()


@pytest.mark.redis
def test_push_reply_then_wait_reply(redis_client: Any) -> None:
    key = f"zc-events-test-legacy-{uuid.uuid4()}"
    body = legacy.encode_response(Response({"answer": 2}))
    try:
        legacy_redis.push_reply(redis_client, key, body)
        assert 0 < redis_client.ttl(key) <= legacy.RESPONSE_TTL
        assert legacy_redis.wait_reply(redis_client, key, 1.0, key="add") == body
        assert not redis_client.exists(key)
    finally:
        redis_client.delete(key)


@pytest.mark.redis
def test_wait_reply_outlasts_the_client_socket_timeout(redis_client: Any) -> None:
    """A 0.5 s socket timeout must not cut a longer wait short, nor lose a late reply."""
    key = f"zc-events-test-legacy-{uuid.uuid4()}"
    body = legacy.encode_response(Response(1))
    pusher = threading.Timer(1.2, legacy_redis.push_reply, (redis_client, key, body))
    pusher.start()
    try:
        started = time.monotonic()
        # A wait cut short by the socket timeout would raise RequestTimeout or return early.
        assert legacy_redis.wait_reply(redis_client, key, 30.0, key="slow") == body
        assert time.monotonic() - started > 1.1
    finally:
        pusher.cancel()
        pusher.join(30)  # its push may still be reading EXEC's reply: not past the client's close
        redis_client.delete(key)


@pytest.mark.redis
def test_wait_reply_times_out_naming_the_key(redis_client: Any) -> None:
    key = f"zc-events-test-legacy-{uuid.uuid4()}"
    started = time.monotonic()
    with pytest.raises(RequestTimeout, match="'add'") as info:
        legacy_redis.wait_reply(redis_client, key, 0.3, key="add")
    assert 0.25 < time.monotonic() - started < 3  # waits its 0.3 s, not much more
    assert info.value.key == "add"
    assert isinstance(info.value, zc_events.ZcEventsError)
