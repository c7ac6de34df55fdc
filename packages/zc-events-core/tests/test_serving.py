"""zc_events.serving: one bad message never wedges a worker, on the memory backend and in the
shared serving code every transport uses (the broker transports test it against real workers)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

import zc_events
from zc_events import Dispatcher, Envelope, HandlerRegistry, Settings, legacy
from zc_events.backends.memory import AsyncMemoryBackend, MemoryBackend
from zc_events.serving import (
    ERROR_MESSAGE_HEADER,
    ERROR_TYPE_HEADER,
    FAILURES_HEADER,
    LegacyServer,
    delivery_decision,
    serve_native,
)


def boom(request: zc_events.Request) -> None:
    raise ValueError(f"boom {request.data}")


def dispatcher(**handlers: Any) -> Dispatcher:
    registry = HandlerRegistry({"t.boom": boom, "t.ok": lambda r: {"ok": r.data}, **handlers})
    return Dispatcher([registry], settings=Settings({}))


@pytest.mark.parametrize(
    "body",
    [
        b"\x00not json",
        b"[" * 200000,  # RecursionError in the standard library's decoder
        b'{"v":1,"id":"x","key":["a"],"method":"GET","data":null,"headers":{},'
        b'"reply_to":null,"deadline":null,"priority":0,"sent_at":1}',
    ],
    ids=["not-json", "deep", "key-is-a-list"],
)
def test_anything_undecodable_is_a_dead_letter_never_an_exception(body: bytes) -> None:
    outcome = serve_native(dispatcher(), body)
    assert not outcome.ack and outcome.dead_letter.startswith("decoding failed")


def test_a_failed_no_wait_handler_is_a_dead_letter_with_the_error() -> None:
    outcome = serve_native(dispatcher(), Envelope.create("t.boom", data=1).encode())
    headers = outcome.dead_letter_headers(queue="q", attempts=1)
    assert (headers[ERROR_TYPE_HEADER], headers[ERROR_MESSAGE_HEADER]) == ("ValueError", "boom 1")
    off = serve_native(
        dispatcher(), Envelope.create("t.boom").encode(), dead_letter_failed_no_wait=False
    )
    assert off.ack


def test_a_middleware_that_raises_is_a_dead_letter() -> None:
    class Broken(zc_events.Middleware):
        def incoming_request(self, envelope: Envelope) -> Envelope:
            raise RuntimeError("broken")

    d = Dispatcher([HandlerRegistry({"t.ok": lambda r: 1})], [Broken()], settings=Settings({}))
    outcome = serve_native(d, Envelope.create("t.ok").encode())
    assert not outcome.ack
    assert (outcome.error_type, outcome.error_message) == ("RuntimeError", "broken")


@pytest.mark.parametrize(
    ("headers", "redelivered", "want"),
    [
        (None, False, ("handle", 0)),
        (None, True, ("requeue", 1)),
        ({FAILURES_HEADER: 2}, False, ("handle", 2)),
        ({FAILURES_HEADER: 2}, True, ("dead_letter", 3)),
        ({"x-delivery-count": 1}, True, ("handle", 1)),  # quorum queue: the broker counts
        ({"x-delivery-count": 3}, True, ("dead_letter", 3)),
    ],
)
def test_delivery_limit(headers: Any, redelivered: bool, want: tuple[str, int]) -> None:
    assert delivery_decision(headers, redelivered, 3) == want


class FlakyRedis:
    """Fails ``failures`` pushes, then records them."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.pushed: list[tuple[str, bytes]] = []

    def pipeline(self, transaction: bool = True) -> FlakyRedis:
        return self

    def rpush(self, key: str, body: bytes) -> None:
        self._item = (key, body)

    def expire(self, key: str, ttl: int) -> None:
        pass

    def execute(self) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("Redis is down")
        self.pushed.append(self._item)


def legacy_body(key: str, response_key: str | None, data: Any = None) -> tuple[bytes, Any]:
    message = legacy.build_request(Envelope.create(key, "GET", data), response_key)
    return message.body, message.properties["headers"]


@pytest.mark.parametrize("failures", [1, 10])
def test_legacy_reply_push_is_retried_and_never_reruns_the_handler(failures: int) -> None:
    calls: list[Any] = []
    redis = FlakyRedis(failures)
    server = LegacyServer(
        dispatcher(**{"t.count": lambda r: calls.append(r.data) or len(calls)}),
        lambda: redis,
        settings=Settings({}),
        push_backoff=(0, 0, 0),
    )
    response_key = str(uuid.uuid4())
    outcome = server.serve_body(*legacy_body("t.count", response_key, 5))
    assert outcome.ack  # a Redis failure is never the broker's business
    assert calls == [5]
    assert redis.pushed == ([] if failures > 3 else [(response_key, redis.pushed[0][1])])


def test_legacy_non_uuid_response_key_is_a_dead_letter_without_redis() -> None:
    redis = FlakyRedis(0)
    server = LegacyServer(dispatcher(), lambda: redis, settings=Settings({}))
    outcome = server.serve_body(*legacy_body("t.ok", "session:42"))
    assert not outcome.ack and "UUID" in (outcome.dead_letter or "")
    assert redis.pushed == []


def test_memory_backend_keeps_failed_no_wait_work() -> None:
    with MemoryBackend(dispatcher=dispatcher(), settings=Settings({})) as backend:
        client = zc_events.EventClient(backend)
        message_id = client.post_no_wait("t.boom", data=7)
        assert backend.join(10)
        [(body, headers)] = backend.dead_lettered
    assert Envelope.decode(body).id == message_id
    assert headers[ERROR_TYPE_HEADER] == "ValueError"


def test_async_memory_backend_keeps_failed_no_wait_work() -> None:
    async def main() -> list[tuple[bytes, dict[str, Any]]]:
        backend = AsyncMemoryBackend(dispatcher=dispatcher(), settings=Settings({}))
        client = zc_events.AsyncEventClient(backend)
        await client.post_no_wait("t.boom", data=8)
        assert await backend.join(10)
        await backend.aclose()
        return backend.dead_lettered

    [(_body, headers)] = asyncio.run(main())
    assert headers[ERROR_MESSAGE_HEADER] == "boom 8"
