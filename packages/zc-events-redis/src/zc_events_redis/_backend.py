"""The ``redis`` backend: the client side (publish, wait for replies) and the worker entry."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import redis
import redis.exceptions
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from zc_events import (
    AsyncBackend,
    Backend,
    ConfigurationError,
    DeadLetter,
    Dispatcher,
    Envelope,
    NoRouteError,
    PublishError,
    RequestTimeout,
    Response,
    Settings,
    batch_error,
)

from ._common import (
    DEFAULT_PREFIX,
    DEFAULT_URL,
    PUBLISH_SCRIPT,
    Options,
    describe_url,
    hold_connection,
    pack,
)

__all__ = ["DEFAULT_PREFIX", "DEFAULT_URL", "RedisBackend"]

log = logging.getLogger("zc_events.redis")

#: Errors after which a fresh connection may succeed.
CONNECTION_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
AUTH_ERRORS = (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)


def connect(options: Options, role: str, *, retries: int = 3) -> redis.Redis:
    """A redis-py client for ``role`` (named in ``CLIENT LIST``), with bounded retries."""
    name = f"{options.client_name or 'zc-events'}:{role}:{os.getpid()}"
    return redis.Redis.from_url(
        options.url,
        client_name=name,
        socket_connect_timeout=5,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
    )


def publish_result(key: str, result: Any, maxlen: int) -> None:
    """Raise for what :data:`PUBLISH_SCRIPT` returns when it did not publish."""
    if isinstance(result, bytes | str):
        return
    if isinstance(result, list):
        group = result[0].decode(errors="replace") if isinstance(result[0], bytes) else result[0]
        raise PublishError(
            f"the stream of key {key!r} is full: service {group!r} has {result[1]} unread "
            f"messages (maxlen {maxlen}); start more workers or raise the 'maxlen' option"
        )
    raise NoRouteError(f"no service handles key {key!r} (no consumer group reads its stream)", key)


class _Waiter:
    """One pending request: whoever reads its reply sets ``body``, then signals.

    The signal is a lock held from creation (a ``threading.Event`` costs a Condition per call):
    :meth:`signal` releases it, :meth:`wait` takes it back. Waiters re-check their state after
    every wake-up, so a spurious or doubled signal is harmless.
    """

    __slots__ = ("_lock", "body")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.body: bytes | None = None

    def signal(self) -> None:
        with contextlib.suppress(RuntimeError):  # already signalled
            self._lock.release()

    def wait(self, timeout: float) -> None:
        self._lock.acquire(timeout=max(timeout, 0.0))


class Replies:
    """The reply list of one client process, and the calls waiting on it.

    No background thread: one waiting call at a time takes the reading role, pops replies
    (``BLMPOP``, up to 100 per round trip) and hands each to the call with the same envelope id;
    when its own reply came it passes the role to another waiting call. A lone caller thus
    reads its own reply, with no thread hand-off, and publishes its request on the reading
    connection in the same round trip as its first read (:meth:`publish_and_read`).
    Replies nobody waits for are dropped.
    """

    def __init__(self, options: Options) -> None:
        self.name = options.names.reply(uuid.uuid4().hex)
        self.pid = os.getpid()
        self._waiters: dict[str, _Waiter] = {}
        self._reading = threading.Lock()
        self._redis = connect(options, "replies", retries=0)
        # held by whoever has the reading role (Any: redis-py's Connection is untyped)
        self._conn: Any = None
        self._blmpop = True  # Redis < 7.0 has only BLPOP
        self._closed = False
        self._delay = 0.05
        self._ttl_ms = int(options.reply_ttl * 1000)

    def expect(self, envelope_id: str) -> _Waiter:
        """Register a call before its request is published."""
        waiter = self._waiters[envelope_id] = _Waiter()
        return waiter

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = hold_connection(self._redis)
        return self._conn

    def _pop_command(self, timeout: float) -> bytes:
        if self._blmpop:
            return pack(b"BLMPOP", timeout, b"1", self.name, b"LEFT", b"COUNT", b"100")
        return pack(b"BLPOP", self.name, timeout)

    def publish_and_read(
        self, script: str, stream: str, args: Sequence[Any], timeout: float, other: redis.Redis
    ) -> Any:
        """If no other call is reading: publish (``EVALSHA script``) and pop replies for up to
        ``timeout`` seconds in one round trip, and return the script's result (a
        ``ResponseError`` of the script is returned, not raised). None when another call
        reads: publish elsewhere, then :meth:`wait`.

        When nothing was published, an empty entry (dropped by the reader) pushed through
        ``other`` ends the pop at once. A connection error escapes only before the script's
        result is known.
        """
        if not self._reading.acquire(blocking=False):
            return None
        try:
            conn = self._connection()
            publish = pack(b"EVALSHA", script, b"1", stream, *args)
            conn.send_packed_command([publish + self._pop_command(timeout)])
            result: Any
            try:
                result = conn.read_response()
            except redis.exceptions.ResponseError as exc:
                result = exc
            if not isinstance(result, bytes | str):  # nothing published, no reply will come
                with contextlib.suppress(*CONNECTION_ERRORS):
                    pipe = other.pipeline(transaction=False)
                    pipe.rpush(self.name, b"\n")
                    pipe.pexpire(self.name, self._ttl_ms)
                    pipe.execute()
            self._read(None)
            return result
        finally:
            self._reading.release()

    def wait(self, envelope_id: str, waiter: _Waiter, timeout: float) -> bytes | None:
        """The reply body, or None after ``timeout`` seconds; forgets the call either way."""
        deadline = time.monotonic() + timeout
        try:
            while waiter.body is None:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    return None
                if self._reading.acquire(blocking=False):
                    try:
                        if waiter.body is None:
                            self._read(min(left, 1.0))
                    finally:
                        self._reading.release()
                else:  # another call reads: it wakes us with our reply or to take over
                    waiter.wait(left)
            return waiter.body
        finally:
            self._waiters.pop(envelope_id, None)
            if self._waiters:
                self._hand_over()  # whoever waits now may have to take the reading role

    def _hand_over(self) -> None:
        for other in list(self._waiters.values()):
            if other.body is None:
                other.signal()
                return

    def _read(self, timeout: float | None) -> None:
        """Pop replies for up to ``timeout`` seconds (None: the pop was sent already) and hand
        each to its waiting call."""
        try:
            conn = self._connection()
            if timeout is not None:
                conn.send_packed_command([self._pop_command(timeout)])
            try:
                result: Any = conn.read_response()
            except redis.exceptions.ResponseError as exc:
                if not self._blmpop or "unknown command" not in str(exc).lower():
                    raise
                self._blmpop = False
                return
            self._delay = 0.05
        except CONNECTION_ERRORS as exc:
            if self._closed:
                return
            log.warning("reading replies: Redis connection failed (%s); retrying", exc)
            time.sleep(self._delay)
            self._delay = min(self._delay * 2, 1.0)
            return
        if result is None:
            return
        for raw in result[1] if self._blmpop else [result[1]]:
            envelope_id, _, body = raw.partition(b"\n")
            waiter = self._waiters.get(envelope_id.decode(errors="replace"))
            if waiter is not None:
                waiter.body = body
                waiter.signal()

    def close(self, other: redis.Redis) -> None:
        """Forget leftover replies and close the reading connection."""
        self._closed = True
        with contextlib.suppress(*CONNECTION_ERRORS):
            other.delete(self.name)
        self._redis.close()


class RedisBackend(Backend):
    """Redis Streams transport with consumer groups.

    Options (``ZC_EVENTS_BACKEND_OPTIONS``; every one is optional):

    - ``url``: Redis URL (default the ``ZC_EVENTS_REDIS_URL`` setting, else
      ``redis://127.0.0.1:6379/0``).
    - ``prefix``: prefix of every Redis key (default ``zc-events``).
    - ``maxlen``: approximate length bound of each key's stream (default 100000). A publish
      that would trim messages a service has not read yet fails with PublishError instead.
    - ``reply_ttl``: seconds an unread reply is kept (default 60).
    - ``client_name``: prefix of the connection names shown by ``CLIENT LIST``.

    Worker options: ``queue`` (the consumer group, default ``SERVICE_NAME``), ``concurrency``
    (threads, each with its own connection, default 4), ``prefetch`` (entries per read, default
    10), ``block`` (seconds a read blocks, default 1; also how soon SIGTERM is noticed),
    ``claim_idle`` (seconds after which a message another consumer left unacknowledged is
    claimed, default 60; keep it above your slowest handler), ``max_deliveries`` (a message
    delivered more often is dead-lettered, default 5).
    """

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
        self._redis = connect(self.options, "client")
        self._publish = self._redis.register_script(PUBLISH_SCRIPT)
        self._reply_list: Replies | None = None
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def async_backend_class(cls) -> type[AsyncBackend]:
        """The native asyncio backend, on ``redis.asyncio``."""
        from ._async import AsyncRedisBackend

        return AsyncRedisBackend

    @property
    def url(self) -> str:
        return self.options.url

    @property
    def queue(self) -> str:
        """The consumer group the worker reads with (option ``queue``, else ``SERVICE_NAME``)."""
        return self.options.queue or self.settings.service_name

    # -- client side ------------------------------------------------------------------------
    def _fail(self, what: str, exc: BaseException) -> Exception:
        if isinstance(exc, AUTH_ERRORS):
            return ConfigurationError(
                f"Redis at {describe_url(self.url)} refused the credentials: {exc} "
                "(check the 'url' option or ZC_EVENTS_REDIS_URL)"
            )
        return PublishError(f"{what}: Redis at {describe_url(self.url)} failed: {exc!r}")

    def _replies(self) -> Replies:
        replies = self._reply_list
        if replies is None or replies.pid != os.getpid():
            with self._lock:
                if self._closed:
                    raise PublishError("the redis backend is closed")
                replies = self._reply_list
                if replies is None or replies.pid != os.getpid():
                    replies = self._reply_list = Replies(self.options)
        return replies

    def prepare_request(self, envelope: Envelope) -> None:
        """The reply list is this process's: set before middleware, so signatures cover it."""
        envelope.reply_to = self._replies().name

    def request(self, envelope: Envelope, timeout: float) -> Response:
        """Add ``envelope`` to its key's stream and wait for the reply on this process's list."""
        key = envelope.key
        left = envelope.time_left()
        wait = timeout if left is None else min(timeout, left)
        if wait <= 0:
            raise RequestTimeout(
                f"{envelope.method} {key!r}: the deadline passed before it was sent", key, timeout
            )
        replies = self._replies()
        if not self.options.names.is_reply(envelope.reply_to):
            envelope.reply_to = replies.name  # not prepared (called without a client)
        body = self.check_size(envelope, envelope.encode())
        stream = self.options.names.stream(key)
        started = time.monotonic()
        waiter = replies.expect(envelope.id)
        try:
            result: Any = None
            with contextlib.suppress(*CONNECTION_ERRORS):  # then publish through the pool
                # Publish and read the reply list in one round trip, when no other call reads.
                args = (self.options.maxlen, body)
                result = replies.publish_and_read(
                    self._publish.sha, stream, args, min(wait, 1.0), self._redis
                )
            if result is None or isinstance(result, redis.exceptions.NoScriptError):
                # Another call reads, or the fast path failed before Redis answered (the pool
                # client retries on a fresh connection: at least once, as any retried publish),
                # or Redis lost the script (the Script object loads it again).
                result = self._publish(keys=[stream], args=[self.options.maxlen, body])
            elif isinstance(result, redis.exceptions.ResponseError):
                raise result
        except redis.exceptions.RedisError as exc:
            replies.wait(envelope.id, waiter, 0)  # forget the call
            raise self._fail(f"{envelope.method} {key!r}", exc) from exc
        try:
            publish_result(key, result, self.options.maxlen)
        except Exception:
            replies.wait(envelope.id, waiter, 0)
            raise
        reply = replies.wait(envelope.id, waiter, wait - (time.monotonic() - started))
        if reply is None:
            raise RequestTimeout(
                f"no reply to {envelope.method} {key!r} within {timeout:g} s", key, timeout
            )
        return Response.decode(reply)

    def send(self, envelope: Envelope) -> None:
        """Add ``envelope`` to its key's stream; NoRouteError when nobody handles the key."""
        envelope.reply_to = None
        body = self.check_size(envelope, envelope.encode())
        try:
            result = self._publish(
                keys=[self.options.names.stream(envelope.key)], args=[self.options.maxlen, body]
            )
        except redis.exceptions.RedisError as exc:
            raise self._fail(f"{envelope.method} {envelope.key!r}", exc) from exc
        publish_result(envelope.key, result, self.options.maxlen)

    def send_many(self, envelopes: Sequence[Envelope]) -> None:
        """Publish all in one pipeline (one round trip); PublishError names the failures."""
        if not envelopes:
            return
        bodies = []
        for envelope in envelopes:
            envelope.reply_to = None
            bodies.append(self.check_size(envelope, envelope.encode()))
        pipe = self._redis.pipeline(transaction=False)
        for envelope, body in zip(envelopes, bodies, strict=True):
            self._publish(
                keys=[self.options.names.stream(envelope.key)],
                args=[self.options.maxlen, body],
                client=pipe,
            )
        try:
            results = pipe.execute(raise_on_error=False)
        except redis.exceptions.RedisError as exc:
            raise self._fail(f"a batch of {len(envelopes)} messages", exc) from exc
        failed: list[tuple[Envelope, BaseException]] = []
        for envelope, result in zip(envelopes, results, strict=True):
            try:
                if isinstance(result, Exception):
                    raise self._fail(f"{envelope.method} {envelope.key!r}", result)
                publish_result(envelope.key, result, self.options.maxlen)
            except Exception as exc:
                failed.append((envelope, exc))
        if failed:
            raise batch_error(failed, len(envelopes))

    # -- dead letters -----------------------------------------------------------------------
    def dead_letters(self, service: str | None = None) -> list[DeadLetter]:
        """The entries of ``P:dead:<service>`` (default: the worker's group), oldest first."""
        from ._dead import list_dead_letters

        return list_dead_letters(self, service)

    def replay_dead_letters(
        self,
        service: str | None = None,
        ids: Iterable[str] | None = None,
        *,
        prepare: Callable[[Envelope], Envelope] | None = None,
    ) -> list[str]:
        """Publish dead letters of ``service`` to their key again (as no-wait calls), each
        deleted from the dead-letter stream once Redis has its new copy."""
        from ._dead import replay_dead_letters

        return replay_dead_letters(self, service, ids, prepare)

    # -- server side ------------------------------------------------------------------------
    def serve(self, dispatcher: Dispatcher | None = None) -> None:
        """Read the streams of every handled key in this service's consumer group until
        :meth:`stop`, then finish the message in hand. See :class:`zc_events_redis.Worker`."""
        from ._worker import Worker

        dispatcher = dispatcher if dispatcher is not None else self.default_dispatcher()
        Worker(self.options, self.queue, dispatcher).run(self.stopping)

    def close(self) -> None:
        """Delete this process's reply list and close the connections."""
        with self._lock:
            self._closed = True
            replies, self._reply_list = self._reply_list, None
        if replies is not None and replies.pid == os.getpid():
            replies.close(self._redis)
        self._redis.close()
