"""The worker: consumer threads reading the service's streams in its consumer group.

Each of ``concurrency`` threads owns one consumer name and its connections (one for the
per-message commands, packed by hand; a redis-py client for the rest), and loops:

1. every ``claim_idle / 2`` seconds, ``XAUTOCLAIM`` the entries other consumers of the group
   left unacknowledged for ``claim_idle`` seconds (a worker killed with ``kill -9``), and
   handle them; an entry delivered more than ``max_deliveries`` times is dead-lettered instead;
2. ``XREADGROUP ... COUNT prefetch BLOCK block STREAMS <every key's stream> >``;
3. for each entry: serve it with :mod:`zc_events.serving` (decode, size limit, expiry,
   dispatch), check that its key is the stream's and its ``reply_to`` a reply list of the
   prefix, push the reply, then ``XACK`` (reply and acknowledgement leave in one write, in that
   order; after the last entry of a read, the next ``XREADGROUP`` goes in the same write, so a
   message costs one round trip).

Anything that cannot be decoded or dispatched, and failed no-wait work, moves to the service's
dead-letter stream with the reason. A heartbeat thread refreshes the entries being handled every
``claim_idle / 3`` seconds, so a slow handler is not claimed by another consumer. On
:meth:`Worker.stop` each thread finishes the entry in hand and leaves the rest of its read
pending, marked idle so that live consumers claim them at their next pass; Redis going away
makes a thread reconnect with backoff.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from typing import Any

import redis
import redis.exceptions

from zc_events import ConfigurationError, Dispatcher, Envelope
from zc_events.serving import (
    Outcome,
    failed_dispatch,
    native_envelope,
    native_outcome,
    too_many_deliveries,
)

from ._backend import AUTH_ERRORS, CONNECTION_ERRORS, connect
from ._common import FIELD, Options, describe_url, hold_connection, pack

__all__ = ["Worker"]

log = logging.getLogger("zc_events.redis.worker")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0
#: Idle time (ms) given to entries a stopping consumer leaves pending, so that any live
#: consumer's next XAUTOCLAIM takes them at once.
HAND_BACK_IDLE_MS = 10 * 365 * 24 * 3600 * 1000


class _Fatal(Exception):
    """A problem reconnecting cannot fix."""


class _Link:
    """One consumer thread's Redis: a redis-py client for the occasional commands, and one
    connection of its own for the per-message ones (the read, and the reply, ``XACK`` and next
    read written at once), packed by hand: redis-py's pipeline costs more than the handler."""

    def __init__(self, options: Options, role: str) -> None:
        self.redis = connect(options, role, retries=0)
        self._conn: Any = None

    def exchange(self, commands: list[bytes], read: bytes | None) -> tuple[list[Exception], Any]:
        """Send ``commands`` and then the ``XREADGROUP`` command ``read`` (if any) in one write;
        return the errors Redis answered to ``commands`` and the read's result (its entries, []
        after its timeout, or its error). Connection errors are raised."""
        if self._conn is None:
            self._conn = hold_connection(self.redis)
        conn = self._conn
        conn.send_packed_command([b"".join(commands) + (read or b"")])
        errors: list[Exception] = []
        for _ in commands:
            try:
                conn.read_response()
            except redis.exceptions.ResponseError as exc:
                errors.append(exc)
        result: Any = None
        if read is not None:
            client: Any = self.redis  # untyped method: parses as ``xreadgroup`` returns
            try:
                result = client.parse_response(conn, "XREADGROUP") or []
            except redis.exceptions.ResponseError as exc:
                result = exc
        return errors, result

    def close(self) -> None:
        self.redis.close()


class Worker:
    """Serves ``dispatcher``'s keys in consumer group ``group`` until ``stopping`` is set."""

    def __init__(self, options: Options, group: str, dispatcher: Dispatcher) -> None:
        self.options = options
        self.group = group
        self.dispatcher = dispatcher
        self.keys = dispatcher.keys()
        names = options.names
        self.streams = {names.stream(key): key for key in self.keys}
        self.dead = names.dead(group)
        self.fatal: BaseException | None = None
        self._stopping = threading.Event()
        self._consumer_base = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        #: consumer name -> (stream, entry id) of the entry its thread is handling
        self._in_flight: dict[str, tuple[str, bytes]] = {}
        self._reply_ttl_ms = int(options.reply_ttl * 1000)

    def run(self, stopping: threading.Event) -> None:
        """Consume until ``stopping`` is set, then finish the entries in hand and return."""
        self._stopping = stopping
        if not self._connect_first():
            return
        log.info(
            "consuming %d stream(s) as group %r at %s with %d thread(s), prefetch %d",
            len(self.streams),
            self.group,
            describe_url(self.options.url),
            self.options.concurrency,
            self.options.prefetch,
        )
        threads = [
            threading.Thread(target=self._thread, args=(n,), name=f"zc-events-redis-{n}")
            for n in range(self.options.concurrency)
        ]
        done = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(done,), name="zc-events-redis-heartbeat", daemon=True
        )
        for t in threads:
            t.start()
        heartbeat.start()
        try:
            while not stopping.is_set() and any(t.is_alive() for t in threads):
                stopping.wait(0.5)
        finally:
            stopping.set()
            for t in threads:
                t.join()
            done.set()
            heartbeat.join()
        if self.fatal is not None:
            raise self.fatal
        log.info("stopped consuming group %r", self.group)

    def _connect_first(self) -> bool:
        """Connect and create the groups before saying "consuming"; retry with backoff while
        Redis is unreachable. False if stopped meanwhile; ConfigurationError if refused."""
        delay = BACKOFF_FIRST
        while not self._stopping.is_set():
            conn = connect(self.options, "worker", retries=0)
            try:
                self._create_groups(conn)
                return True
            except AUTH_ERRORS as exc:
                raise ConfigurationError(
                    f"Redis at {describe_url(self.options.url)} refused the credentials: {exc} "
                    "(check the 'url' option or ZC_EVENTS_REDIS_URL)"
                ) from None
            except _Fatal as exc:
                raise (exc.__cause__ or exc) from None
            except CONNECTION_ERRORS as exc:
                wait = delay * random.uniform(0.8, 1.2)
                log.warning(
                    "cannot connect to Redis at %s (%s); retrying in %.1f s",
                    describe_url(self.options.url),
                    exc,
                    wait,
                )
                self._stopping.wait(wait)
                delay = min(delay * 2, BACKOFF_MAX)
            finally:
                conn.close()
        return False

    # -- one consumer thread -------------------------------------------------------------------
    def _thread(self, n: int) -> None:
        delay = BACKOFF_FIRST
        consumer = f"{self._consumer_base}-{n}"
        while not self._stopping.is_set():
            link = _Link(self.options, f"worker-{n}")
            consuming = threading.Event()
            try:
                self._consume(link, consumer, consuming)
                return
            except AUTH_ERRORS as exc:
                self.fatal = ConfigurationError(
                    f"Redis at {describe_url(self.options.url)} refused the credentials: {exc} "
                    "(check the 'url' option or ZC_EVENTS_REDIS_URL)"
                )
                self._stopping.set()
                return
            except _Fatal as exc:
                self.fatal = exc.__cause__ or exc
                self._stopping.set()
                return
            except Exception as exc:
                if self._stopping.is_set():
                    return
                if consuming.is_set():  # it worked for a while: start the backoff afresh
                    delay = BACKOFF_FIRST
                wait = delay * random.uniform(0.8, 1.2)
                if isinstance(exc, CONNECTION_ERRORS):
                    log.warning(
                        "thread %d: Redis connection failed (%s); reconnecting in %.1f s",
                        n,
                        exc,
                        wait,
                    )
                else:  # a bug: keep the worker alive, but say so loudly
                    log.exception("thread %d: unexpected error; reconnecting in %.1f s", n, wait)
                self._stopping.wait(wait)
                delay = min(delay * 2, BACKOFF_MAX)
            finally:
                link.close()

    def _create_groups(self, conn: redis.Redis) -> None:
        """Create this service's group on every key's stream (idempotent; on every connect, as
        a restarted Redis without persistence has forgotten them)."""
        pipe = conn.pipeline(transaction=False)
        for stream in self.streams:
            pipe.xgroup_create(stream, self.group, id="$", mkstream=True)
        for stream, result in zip(self.streams, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(result, Exception) and "BUSYGROUP" not in str(result):
                if isinstance(result, CONNECTION_ERRORS):
                    raise result
                raise _Fatal() from ConfigurationError(
                    f"cannot create consumer group {self.group!r} on stream {stream!r}: {result} "
                    "(a key of that name exists and is not a stream: delete it or choose "
                    "another 'prefix')"
                )

    def _consume(self, link: _Link, consumer: str, consuming: threading.Event) -> None:
        conn = link.redis
        self._create_groups(conn)
        consuming.set()
        opts = self.options
        block_ms = max(1, int(opts.block * 1000))
        ids = [">"] * len(self.streams)
        read_command = pack(
            "XREADGROUP", "GROUP", self.group, consumer, "COUNT", opts.prefetch,
            "BLOCK", block_ms, "STREAMS", *self.streams, *ids,
        )  # fmt: skip
        claim_every = min(max(opts.claim_idle / 2, 0.05), 30.0)
        next_claim = 0.0
        read: Any = None
        while True:
            if not read:
                if self._stopping.is_set():
                    break
                if time.monotonic() >= next_claim:
                    self._reclaim(link, consumer)
                    next_claim = time.monotonic() + claim_every
                    continue
                _, read = link.exchange([], read_command)
                if isinstance(read, Exception):
                    raise read
                if not read:
                    continue
            # The next read rides along with the last acknowledgement of this one (one round
            # trip instead of two), unless reclaiming is due first.
            ride = read_command if time.monotonic() < next_claim else None
            batch, read = read, None
            for i, (stream, entries) in enumerate(batch):
                last = ride if i == len(batch) - 1 else None
                read = self._handle_all(link, consumer, stream.decode(), entries, None, last)
            if isinstance(read, Exception):
                raise read
        self._leave(conn, consumer)

    def _handle_all(
        self,
        link: _Link,
        consumer: str,
        stream: str,
        entries: list[Any],
        deliveries: dict[bytes, int] | None,
        read_next: bytes | None = None,
    ) -> Any:
        """Handle ``entries`` in order (or leave them to others when stopping). With
        ``read_next`` (an ``XREADGROUP`` command), the last entry's acknowledgement carries the
        next read: its result is returned (None if there was none)."""
        read: Any = None
        last = len(entries) - 1
        for i, (entry_id, fields) in enumerate(entries):
            if self._stopping.is_set():
                self._hand_back(link.redis, consumer, stream, [e for e, _ in entries[i:]])
                return None
            count = 1 if deliveries is None else deliveries.get(entry_id, 1)
            self._in_flight[consumer] = (stream, entry_id)
            try:
                read = self._handle(
                    link, stream, entry_id, fields, count, read_next if i == last else None
                )
            finally:
                self._in_flight.pop(consumer, None)
        return read

    def _heartbeat(self, done: threading.Event) -> None:
        """Every ``claim_idle / 3`` seconds reset the idle time of the entries being handled
        (``XCLAIM`` to the same consumer, ``JUSTID``: not a delivery), so that a handler slower
        than ``claim_idle`` is not taken for dead and run a second time elsewhere."""
        conn = connect(self.options, "heartbeat", retries=1)
        try:
            while not done.wait(self.options.claim_idle / 3):
                for consumer, (stream, entry_id) in list(self._in_flight.items()):
                    try:
                        conn.xclaim(stream, self.group, consumer, 0, [entry_id], justid=True)
                    except CONNECTION_ERRORS as exc:
                        log.debug("heartbeat of %s failed: %s", entry_id.decode(), exc)
        finally:
            conn.close()

    def _hand_back(self, conn: redis.Redis, consumer: str, stream: str, ids: list[Any]) -> None:
        """Leave ``ids`` pending, idle for long, so live consumers claim them at their next pass
        (JUSTID: the hand-back does not count as a delivery)."""
        conn.xclaim(stream, self.group, consumer, 0, ids, idle=HAND_BACK_IDLE_MS, justid=True)
        log.info("left %d message(s) of %r pending for other consumers", len(ids), stream)

    def _leave(self, conn: redis.Redis, consumer: str) -> None:
        """On a clean stop, delete this consumer from the group if nothing is pending on it."""
        try:
            for stream in self.streams:
                summary = conn.xpending_range(stream, self.group, "-", "+", 1, consumer)
                if not summary:
                    conn.xgroup_delconsumer(stream, self.group, consumer)
        except CONNECTION_ERRORS:
            log.debug("could not delete consumer %r on stop", consumer, exc_info=True)

    def _reclaim(self, link: _Link, consumer: str) -> None:
        """Claim and handle what other consumers left unacknowledged for ``claim_idle``."""
        conn = link.redis
        idle_ms = max(1, int(self.options.claim_idle * 1000))
        for stream in self.streams:
            start: Any = "0-0"
            while not self._stopping.is_set():
                result: Any = conn.xautoclaim(
                    stream, self.group, consumer, idle_ms, start, count=self.options.prefetch
                )
                start, entries = result[0], result[1]
                entries = [e for e in entries if e is not None and e[1] is not None]
                if entries:
                    pending: Any = conn.xpending_range(
                        stream,
                        self.group,
                        entries[0][0],
                        entries[-1][0],
                        len(entries),
                        consumer,
                    )
                    counts = {p["message_id"]: p["times_delivered"] for p in pending}
                    log.warning(
                        "claimed %d message(s) of %r that another consumer left unacknowledged",
                        len(entries),
                        stream,
                    )
                    self._handle_all(link, consumer, stream, entries, counts)
                if start in (b"0-0", "0-0"):
                    break

    # -- one entry -----------------------------------------------------------------------------
    def _dead_letter(
        self,
        conn: redis.Redis,
        stream: str,
        entry_id: bytes,
        body: bytes,
        outcome: Outcome,
        n: int,
    ) -> None:
        """Move the entry to the service's dead-letter stream with the reason (and the
        ``x-zc-events-*`` fields every transport's dead letters carry), in one transaction with
        its XACK."""
        headers = outcome.dead_letter_copy(
            None,
            queue=stream,
            dead_queue=self.dead,
            attempts=n,
            what=f"message {entry_id.decode()}",
            logger=log,
        )
        error = f" ({outcome.error_type}: {outcome.error_message})" if outcome.error_type else ""
        fields: dict[Any, Any] = {
            "stream": stream,
            "entry": entry_id,
            "reason": f"{outcome.dead_letter}{error}",
            "deliveries": n,
            "body": body,
            "at": repr(time.time()),
            **{name: str(value) for name, value in headers.items()},
        }
        pipe = conn.pipeline(transaction=True)
        pipe.xadd(self.dead, fields, maxlen=self.options.maxlen, approximate=True)
        pipe.xack(stream, self.group, entry_id)
        pipe.execute()

    def _handle(
        self,
        link: _Link,
        stream: str,
        entry_id: bytes,
        fields: dict[bytes, bytes],
        n: int,
        read_next: bytes | None = None,
    ) -> Any:
        """Serve one entry (``zc_events.serving`` decides), then reply and acknowledge it, or
        dead-letter it. Only Redis errors escape: the entry stays pending and is retried.

        With ``read_next`` (and not stopping), that ``XREADGROUP`` is written after the reply
        and the ``XACK``; its result (entries, [] or the error) is returned, else None.
        """
        body = fields.get(FIELD) or b""
        read: Any = None
        try:
            envelope, outcome = self._serve(stream, fields, n)
            if outcome.ack:
                commands = []
                if outcome.reply is not None and envelope is not None:
                    assert envelope.reply_to is not None
                    reply = envelope.id.encode(errors="replace") + b"\n" + outcome.reply
                    commands.append(pack(b"RPUSH", envelope.reply_to, reply))
                    commands.append(pack(b"PEXPIRE", envelope.reply_to, self._reply_ttl_ms))
                commands.append(pack(b"XACK", stream, self.group, entry_id))
                if self._stopping.is_set():
                    read_next = None
                errors, read = link.exchange(commands, read_next)
                if errors:
                    raise errors[0]
                return read
        except CONNECTION_ERRORS:
            raise
        except Exception as exc:  # a bug: keep the worker alive and the entry kept
            log.exception("message %s of %r could not be handled", entry_id.decode(), stream)
            outcome = Outcome(dead_letter=f"serving failed: {type(exc).__name__}: {exc}")
        self._dead_letter(link.redis, stream, entry_id, body, outcome, n)
        return read

    def _serve(
        self, stream: str, fields: dict[bytes, bytes], n: int
    ) -> tuple[Envelope | None, Outcome]:
        """The envelope (when there is one) and what to do with the entry; never raises."""
        if n > self.options.max_deliveries:
            return None, too_many_deliveries(n - 1, self.options.max_deliveries)
        body = fields.get(FIELD)
        if body is None:
            names = sorted(k.decode(errors="replace") for k in fields)
            return None, Outcome(dead_letter=f"the stream entry has no 'e' field (fields: {names})")
        envelope = native_envelope(self.dispatcher, body)  # decoded, size-checked, not expired
        if isinstance(envelope, Outcome):
            return None, envelope
        if envelope.key != self.streams[stream]:
            reason = f"its key {envelope.key!r} is not the key of the stream it was read from"
            return None, Outcome(dead_letter=reason, key=envelope.key, id=envelope.id)
        reply_to = envelope.reply_to
        if reply_to is not None and not self.options.names.is_reply(reply_to):
            reason = f"reply_to {reply_to[:80]!r} is not a reply list of this prefix"
            return None, Outcome(dead_letter=reason, key=envelope.key, id=envelope.id)
        try:
            response = self.dispatcher.dispatch(envelope)
        except Exception as exc:
            return envelope, failed_dispatch(envelope, exc)
        return envelope, native_outcome(
            self.dispatcher, envelope, response, self.options.dead_letter_failed_no_wait
        )
