"""The asyncio ``redis`` backend, on ``redis.asyncio``.

Same keys and wire as the sync backend. Each event loop that uses a backend gets its own
connections, its own reply list and one reader task that pops replies (``BLMPOP``, up to 100 per
round trip) and resolves the waiting calls by envelope id, so many calls are in flight at once.
Cancelling the task that awaits a call forgets only that call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from zc_events import (
    AsyncBackend,
    ConfigurationError,
    Envelope,
    PublishError,
    RequestTimeout,
    Response,
    Settings,
    batch_error,
)

from ._backend import AUTH_ERRORS, CONNECTION_ERRORS, publish_result
from ._common import DEFAULT_PREFIX, PUBLISH_SCRIPT, Options, describe_url

__all__ = ["AsyncRedisBackend"]

log = logging.getLogger("zc_events.redis")

T = TypeVar("T")


def _retrieve(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned command's failure is not logged as unhandled


async def _cancellable(command: Awaitable[T]) -> T:
    """Await a redis.asyncio ``command`` in a task of its own.

    redis.asyncio can swallow a cancellation that reaches it mid-command (the command then
    completes as if nothing happened), so a call awaiting it directly could not be cancelled.
    Cancelling the caller here always raises CancelledError at once, and cancels the command.
    """
    task = asyncio.ensure_future(command)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        task.add_done_callback(_retrieve)
        raise


def _connect(options: Options, role: str, retries: int) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        options.url,
        client_name=f"{options.client_name or 'zc-events'}:{role}:{os.getpid()}",
        socket_connect_timeout=5,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
    )


class _LoopState:
    """What one event loop uses: connections, the reply list, the waiting calls, the reader."""

    def __init__(self, options: Options, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.name = options.names.reply(uuid.uuid4().hex)
        self.redis = _connect(options, "async-client", 3)
        self.publish = self.redis.register_script(PUBLISH_SCRIPT)
        self.replies = _connect(options, "async-replies", 0)
        self.waiters: dict[str, asyncio.Future[bytes]] = {}
        self.reader: asyncio.Task[None] | None = None
        self.blmpop = True
        self.closing = False

    def start_reader(self) -> None:
        if self.reader is None or self.reader.done():
            self.reader = self.loop.create_task(self._read(), name="zc-events-redis-replies")

    async def _read(self) -> None:
        delay = 0.05
        while not self.closing:
            try:
                # _cancellable: redis.asyncio can swallow a cancellation that reaches it in a
                # blocking read, and this loop would then go on forever (asyncio.run hung at
                # exit when the client was not closed).
                if self.blmpop:
                    result: Any = await _cancellable(
                        self.replies.blmpop(1, 1, self.name, direction="LEFT", count=100)
                    )
                    items = [] if result is None else result[1]
                else:
                    item: Any = await _cancellable(self.replies.blpop([self.name], timeout=1))
                    items = [] if item is None else [item[1]]
                delay = 0.05
            except redis.exceptions.ResponseError as exc:
                if not self.blmpop or "unknown command" not in str(exc).lower():
                    log.exception("reading replies failed")
                    await asyncio.sleep(1)
                self.blmpop = False
                continue
            except CONNECTION_ERRORS as exc:
                if self.closing:
                    return
                log.warning("reading replies: Redis connection failed (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            for raw in items:
                envelope_id, _, body = raw.partition(b"\n")
                future = self.waiters.pop(envelope_id.decode(errors="replace"), None)
                if future is not None and not future.done():
                    future.set_result(body)

    async def close(self) -> None:
        # Wake the reader with an empty entry rather than cancel it: redis.asyncio may keep
        # waiting on a cancelled blocking read.
        self.closing = True
        reader = self.reader
        if reader is not None and not reader.done():
            with contextlib.suppress(*CONNECTION_ERRORS):
                await self.redis.rpush(self.name, b"\n")
            done, _ = await asyncio.wait([reader], timeout=2)
            if not done:
                reader.cancel()
                await self.replies.aclose()
                with contextlib.suppress(asyncio.CancelledError, *CONNECTION_ERRORS):
                    await reader
        with contextlib.suppress(*CONNECTION_ERRORS):
            await self.redis.delete(self.name)
        await self.replies.aclose()
        await self.redis.aclose()


class AsyncRedisBackend(AsyncBackend):
    """The asyncio face of :class:`zc_events_redis.RedisBackend`: the same options (the worker
    options are accepted and ignored: serving is the sync worker's job)."""

    name = "redis"

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        url: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        queue: str | None = None,
        concurrency: int = 4,
        prefetch: int = 10,
        maxlen: int = 100_000,
        block: float = 1.0,
        claim_idle: float = 60.0,
        max_deliveries: int | None = None,
        reply_ttl: float = 60.0,
        client_name: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(settings=settings, **options)
        self.options = Options(
            self.settings,
            url=url,
            prefix=prefix,
            queue=queue,
            concurrency=concurrency,
            prefetch=prefetch,
            maxlen=maxlen,
            block=block,
            claim_idle=claim_idle,
            max_deliveries=max_deliveries,
            reply_ttl=reply_ttl,
            client_name=client_name,
        )
        self._states: dict[asyncio.AbstractEventLoop, _LoopState] = {}
        self._closed = False

    @property
    def url(self) -> str:
        return self.options.url

    def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)
        if state is None:
            if self._closed:
                raise PublishError("the redis backend is closed")
            for old in [other for other in self._states if other.is_closed()]:
                del self._states[old]  # a finished loop's connections died with it
            state = self._states[loop] = _LoopState(self.options, loop)
        return state

    def _fail(self, what: str, exc: BaseException) -> Exception:
        if isinstance(exc, AUTH_ERRORS):
            return ConfigurationError(
                f"Redis at {describe_url(self.url)} refused the credentials: {exc} "
                "(check the 'url' option or ZC_EVENTS_REDIS_URL)"
            )
        return PublishError(f"{what}: Redis at {describe_url(self.url)} failed: {exc!r}")

    def prepare_request(self, envelope: Envelope) -> None:
        """The reply list is this event loop's: set before middleware, so signatures cover it."""
        envelope.reply_to = self._state().name

    async def request(self, envelope: Envelope, timeout: float) -> Response:
        """Add ``envelope`` to its key's stream and await the reply on this loop's list."""
        key = envelope.key
        left = envelope.time_left()
        wait = timeout if left is None else min(timeout, left)
        if wait <= 0:
            raise RequestTimeout(
                f"{envelope.method} {key!r}: the deadline passed before it was sent", key, timeout
            )
        state = self._state()
        if not self.options.names.is_reply(envelope.reply_to):
            envelope.reply_to = state.name  # not prepared (called without a client)
        body = self.check_size(envelope, envelope.encode())
        future: asyncio.Future[bytes] = state.loop.create_future()
        state.waiters[envelope.id] = future
        state.start_reader()
        try:
            try:
                result = await _cancellable(
                    state.publish(
                        keys=[self.options.names.stream(key)], args=[self.options.maxlen, body]
                    )
                )
            except redis.exceptions.RedisError as exc:
                raise self._fail(f"{envelope.method} {key!r}", exc) from exc
            publish_result(key, result, self.options.maxlen)
            try:
                # Not asyncio.wait_for: on Python 3.11 it returns a reply that arrives together
                # with a cancellation, so the cancelled call would go on.
                async with asyncio.timeout(wait):
                    reply = await future
            except TimeoutError:
                raise RequestTimeout(
                    f"no reply to {envelope.method} {key!r} within {timeout:g} s", key, timeout
                ) from None
        finally:
            state.waiters.pop(envelope.id, None)
        return Response.decode(reply)

    async def send(self, envelope: Envelope) -> None:
        """Add ``envelope`` to its key's stream; NoRouteError when nobody handles the key."""
        await self._publish_all([envelope], single=True)

    async def send_many(self, envelopes: Sequence[Envelope]) -> None:
        """Publish all in one pipelined round trip; PublishError names the failures."""
        if envelopes:
            await self._publish_all(envelopes, single=False)

    async def _publish_all(self, envelopes: Sequence[Envelope], *, single: bool) -> None:
        state = self._state()
        bodies = []
        for envelope in envelopes:
            envelope.reply_to = None
            bodies.append(self.check_size(envelope, envelope.encode()))
        names = self.options.names
        maxlen = self.options.maxlen

        async def publish() -> list[Any]:
            if single:
                return [
                    await state.publish(
                        keys=[names.stream(envelopes[0].key)], args=[maxlen, bodies[0]]
                    )
                ]
            async with state.redis.pipeline(transaction=False) as pipe:
                for envelope, body in zip(envelopes, bodies, strict=True):
                    await state.publish(
                        keys=[names.stream(envelope.key)], args=[maxlen, body], client=pipe
                    )
                return list(await pipe.execute(raise_on_error=False))

        try:
            results = await _cancellable(publish())
        except redis.exceptions.RedisError as exc:
            what = (
                f"{envelopes[0].method} {envelopes[0].key!r}"
                if single
                else f"a batch of {len(envelopes)} messages"
            )
            raise self._fail(what, exc) from exc
        if single:
            publish_result(envelopes[0].key, results[0], maxlen)
            return
        failed: list[tuple[Envelope, BaseException]] = []
        for envelope, result in zip(envelopes, results, strict=True):
            try:
                if isinstance(result, Exception):
                    raise self._fail(f"{envelope.method} {envelope.key!r}", result)
                publish_result(envelope.key, result, maxlen)
            except Exception as exc:
                failed.append((envelope, exc))
        if failed:
            raise batch_error(failed, len(envelopes))

    async def aclose(self) -> None:
        """Stop this loop's reader, delete its reply list, close its connections."""
        self._closed = True
        loop = asyncio.get_running_loop()
        state = self._states.pop(loop, None)
        if state is not None:
            await state.close()
