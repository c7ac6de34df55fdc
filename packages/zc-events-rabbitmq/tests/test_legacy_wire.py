"""Wire compatibility with zc_events 0.4, checked against the golden captures in
``tests/fixtures/legacy-wire`` (at the repository root): what the new client publishes, what the
new worker answers to the captured old messages, and how a captured old reply is read."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from zc_events import RequestTimeout, Response

pytestmark = [pytest.mark.rabbitmq, pytest.mark.redis]

WIRE = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "legacy-wire"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def capture(name: str) -> dict[str, Any]:
    return json.loads((WIRE / name).read_text())


def properties_of(props: pika.BasicProperties) -> dict[str, Any]:
    names = capture("get_request.json")["amqp"]["properties"]
    return {name: getattr(props, name) for name in names}


@pytest.fixture
def old_queue(service: Any) -> Iterator[str]:
    """``<SERVICE_NAME>-events`` bound to the fanout exchange as the old worker left it, with
    nobody consuming: what the new client publishes stays there to be read."""
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    ch = conn.channel()
    ch.exchange_declare(service.events_exchange, "fanout", durable=True)
    queue = f"{service.name}-events"
    ch.queue_declare(queue, durable=True, arguments={"x-max-priority": 10})
    ch.queue_bind(queue, service.events_exchange)
    conn.close()
    yield queue


def take(broker: Any, queue: str) -> tuple[Any, bytes]:
    messages = broker.get_all(queue)
    assert len(messages) == 1, messages
    return messages[0]


@pytest.mark.parametrize(
    ("golden", "call"),
    [
        ("get_request.json", lambda c: c.get("add", data={"x": 1, "y": 2}, timeout=0.3)),
        ("post_no_wait_request.json", lambda c: c.post_no_wait("add", data={"x": 1, "y": 2})),
    ],
)
def test_client_publishes_what_the_old_client_published(
    service: Any, broker: Any, old_queue: str, golden: str, call: Any
) -> None:
    old = capture(golden)
    # nobody answers in this test
    with service.client("rabbitmq_legacy") as client, contextlib.suppress(RequestTimeout):
        call(client)
    props, body = take(broker, old_queue)
    payload = json.loads(body)[0][1]
    task_id, response_key = payload["id"], payload["response_key"]
    old_payload = old["body"]["json"][0][1]
    # ids aside, the body is byte for byte the old one
    expected = old["body"]["raw"].replace(old_payload["id"], task_id)
    if old_payload["response_key"]:
        expected = expected.replace(old_payload["response_key"], response_key)
    assert body.decode() == expected
    # and so are all 14 properties (the headers carry the ids too)
    want = json.loads(
        json.dumps(old["amqp"]["properties"])
        .replace(old_payload["id"], task_id)
        .replace(str(old_payload["response_key"]), str(response_key))
    )
    assert properties_of(props) == want


def test_header_table_is_encoded_as_the_old_client_encoded_it(service: Any) -> None:
    """Field types on the wire (S, V, I, A) match the captured content header byte for byte."""
    from zc_events import Envelope, legacy

    old = capture("get_request.json")
    old_payload = old["body"]["json"][0][1]
    envelope = Envelope.create("add", "GET", {"x": 1, "y": 2})
    envelope.id = old_payload["id"]
    message = legacy.build_request(envelope, old_payload["response_key"])
    header = pika.frame.Header(1, len(message.body), pika.BasicProperties(**message.properties))
    marshaled = header.marshal()
    # a frame is type (1) + channel (2) + size (4) + payload + end marker (1)
    assert marshaled[7:-1].hex() == old["amqp"]["frames_hex"]["content_header_payload"]


@pytest.fixture
def old_fleet_peer(service: Any, redis_client: Any) -> Iterator[tuple[Any, str]]:
    """A new worker (native + legacy) serving the handlers the captures were made with."""
    calls = f"zc-events-test-legacy-calls-{uuid.uuid4().hex[:10]}"
    worker = service.start(("legacy_handlers",), legacy=True, extra_env={"LEGACY_CALLS": calls})
    with service.client() as client:
        service.wait_ready(client, "some_event")
    redis_client.delete(calls)
    yield worker, calls
    redis_client.delete(calls)


def replay(broker: Any, service: Any, golden: str, response_key: str | None = None) -> None:
    """Publish a captured old message, as captured, onto the service's fanout exchange."""
    old = capture(golden)
    body = old["body"]["raw"]
    props = dict(old["amqp"]["properties"])
    old_key = (
        old["body"]["json"][0][1].get("response_key") if golden.endswith("request.json") else None
    )
    if old_key and response_key:
        body = body.replace(old_key, response_key)
        props["headers"] = json.loads(json.dumps(props["headers"]).replace(old_key, response_key))
    broker.publish(
        service.events_exchange,
        "",
        body.encode(),
        **{k: v for k, v in props.items() if v is not None},
    )


def test_captured_get_is_answered_as_the_old_worker_answered(
    service: Any, broker: Any, redis_client: Any, old_fleet_peer: Any, wait_for: Any
) -> None:
    response_key = str(uuid.uuid4())  # a UUID, as servers require
    replay(broker, service, "get_request.json", response_key)
    wait_for(lambda: redis_client.exists(response_key), 10, "the reply")
    assert redis_client.type(response_key) == b"list"
    assert 55 <= redis_client.ttl(response_key) <= 60  # RPUSH + EXPIRE 60
    assert redis_client.lrange(response_key, 0, -1) == [
        capture("response_success.json")["value_raw"].encode()
    ]
    redis_client.delete(response_key)


def test_captured_failing_get_gets_the_old_error_shape(
    service: Any, broker: Any, redis_client: Any, old_fleet_peer: Any
) -> None:
    old = capture("get_request.json")
    response_key = str(uuid.uuid4())  # a UUID, as servers require
    # the capture of get('add', data={'x': 1}) is the reply only; make its request from get's
    body = (
        old["body"]["raw"]
        .replace('{"x":1,"y":2}', '{"x":1}')
        .replace(old["body"]["json"][0][1]["response_key"], response_key)
    )
    broker.publish(
        service.events_exchange, "", body.encode(), headers={"task": "microservice.event"}
    )
    item = redis_client.blpop([response_key], timeout=10)
    assert item is not None
    reply = json.loads(item[1])
    want = capture("response_error.json")["value_json"]
    assert list(reply) == list(want) == ["data", "has_errors", "errors"]
    assert (reply["data"], reply["has_errors"]) == (None, True)
    error = reply["errors"][0]
    assert (error["type"], error["message"]) == ("KeyError", "'y'")
    # Old clients read error["trace"]: it is there, empty unless ZC_EVENTS_SEND_TRACEBACKS.
    assert error["trace"] == ""


def test_captured_no_wait_and_deprecated_event_reach_their_handlers(
    service: Any, broker: Any, redis_client: Any, old_fleet_peer: Any, wait_for: Any
) -> None:
    calls = old_fleet_peer[1]
    replay(broker, service, "post_no_wait_request.json")
    replay(broker, service, "emit_event.json")
    wait_for(lambda: redis_client.llen(calls) == 2, 15, "the two calls")
    got = sorted((json.loads(raw) for raw in redis_client.lrange(calls, 0, -1)), key=str)
    assert got == sorted(
        [
            {"key": "add", "method": "POST", "data": {"x": 1, "y": 2}},
            {
                "key": "some_event",
                "method": "POST",
                "data": {"resource_type": "Order", "resource_id": "1", "user_id": "2"},
            },
        ],
        key=str,
    )


def test_keys_this_service_does_not_handle_are_left_to_the_others(
    service: Any, broker: Any, redis_client: Any, old_fleet_peer: Any
) -> None:
    response_key = str(uuid.uuid4())  # a UUID, as servers require
    old = capture("get_request.json")
    body = (
        old["body"]["raw"]
        .replace('"add"', '"someone.else"')
        .replace(old["body"]["json"][0][1]["response_key"], response_key)
    )
    broker.publish(
        service.events_exchange, "", body.encode(), headers={"task": "microservice.event"}
    )
    assert redis_client.blpop([response_key], timeout=1) is None
    assert broker.count(f"{service.name}-events") == 0  # taken and acknowledged
    assert broker.count(f"{service.name}.dead") == 0


def test_client_reads_a_reply_pushed_by_an_old_worker(
    service: Any, broker: Any, old_queue: str, redis_client: Any
) -> None:
    """A stand-in old worker: reads the request, pushes the captured reply bytes."""
    from zc_events import legacy, legacy_redis

    old_reply = capture("response_success.json")["value_raw"]

    def old_worker() -> None:
        conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        ch = conn.channel()
        for method, props, body in ch.consume(old_queue, inactivity_timeout=10):
            if method is None:
                break
            request = legacy.parse_request(body, props.headers)
            legacy_redis.push_reply(redis_client, request.response_key, old_reply.encode())
            ch.basic_ack(method.delivery_tag)
            break
        ch.cancel()
        conn.close()

    thread = threading.Thread(target=old_worker)
    thread.start()
    with service.client("rabbitmq_legacy") as client:
        response = client.get("add", data={"x": 1, "y": 2}, timeout=10)
    thread.join(10)
    assert response == Response(3, False, [])
    assert (response.data, response.has_errors, response.errors) == (3, False, [])


def test_fanout_with_no_queue_bound_is_no_route(service: Any) -> None:
    from zc_events import NoRouteError

    with service.client("rabbitmq_legacy") as client:
        with pytest.raises(NoRouteError, match="returned"):
            client.post_no_wait("add", data={})
        with pytest.raises(NoRouteError, match=service.events_exchange):
            client.get("add", data={}, timeout=0.3)
