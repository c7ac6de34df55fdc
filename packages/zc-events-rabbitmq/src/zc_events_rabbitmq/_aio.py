"""The asyncio ``rabbitmq`` and ``rabbitmq_legacy`` backends, on aiormq.

Same wire as the sync backends. Each backend keeps one connection per event loop, with one
channel in publisher-confirm mode that also consumes RabbitMQ direct reply-to
(``amq.rabbitmq.reply-to``), so every request, reply and no-wait message of the process travels on
it. Many calls are in flight at once, their replies matched by correlation id; cancelling the
task that awaits a call forgets only that call. A connection the broker closed is replaced by
the next call (calls in flight on it fail with PublishError).

Requests are published ``mandatory`` and wait for their confirm (which arrives before the
reply), so a request nobody can receive fails at once with NoRouteError, and one the broker did
not take fails with PublishError instead of timing out.

aiormq rather than aio-pika: aio-pika is a layer over aiormq (its messages, exchanges and
robust connections are objects this backend does not need), and in a quick measurement on this
machine both gave the same round trip; the thinner layer has less to go wrong.

aiormq internals, and why: aiormq's ``basic_publish`` takes a lock, queues one frame and
waits for the socket to drain per message, and hands each reply through two queues and a task;
with many calls in flight that was most of the client's CPU. So :class:`AioLink` writes the
publishes of a loop tick as one frame on ``connection.write_queue`` with the delivery tags and
confirm futures registered where aiormq's own publish puts them (``channel.delivery_tag``,
``channel.confirmations``, ``channel.message_id_delivery_tag``), and :class:`_Inbox` takes the
place of ``channel.frames`` to handle replies, returns and confirms as the connection reader
hands them over; everything else still goes through aiormq. These names are checked against
the aiormq versions the package allows (``aiormq>=7.2,<7.3``, the ``async`` extra); a new
aiormq minor version must pass ``packages/zc-events-rabbitmq/tests/test_async.py`` before the
bound moves.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiormq
import aiormq.abc
import aiormq.exceptions
import pamqp.frame
from aiormq.abc import ChannelFrame
from pamqp import commands as spec
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from zc_events import (
    AsyncBackend,
    Envelope,
    NoRouteError,
    PublishError,
    ReplyError,
    RequestTimeout,
    Response,
    Settings,
    batch_error,
    legacy,
    new_id,
)

from ._amqp import REPLY_TO, describe_url
from ._consumers import MAX_PRIORITY
from ._legacy import LegacyRabbitMQBackend
from ._native import CONTENT_TYPE, PERSISTENT, RabbitMQBackend, _check_routing_key

__all__ = ["CONNECTION_ERRORS", "AsyncLegacyRabbitMQBackend", "AsyncRabbitMQBackend"]

log = logging.getLogger("zc_events.rabbitmq")

#: (exchange, routing key, body, properties) of one message to publish.
Message = tuple[str, str, bytes, Any]

#: What aiormq raises when a connection or channel is unusable.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
)


class LinkLost(Exception):
    """The connection or channel of an :class:`AioLink` failed."""


class CallExpired(Exception):
    """No reply came before the deadline of :meth:`AioLink.call`."""


#: What a call on a link may raise when the link is unusable.
LINK_ERRORS: tuple[type[BaseException], ...] = (LinkLost, *CONNECTION_ERRORS)


class AioLink:
    """One aiormq connection and its channel: confirms on, consuming direct reply-to."""

    #: The URL of the node this link is connected to.
    url = ""

    def __init__(self, connection: Any, channel: Any) -> None:
        self.connection = connection
        self.channel = channel
        self.waiters: dict[str, asyncio.Future[bytes]] = {}
        self.lost: BaseException | None = None
        # (confirm future, message id, frames) published in this loop tick, not yet written.
        self._outbox: list[tuple[asyncio.Future[Any], str, bytes]] = []
        self._flush_scheduled = False
        self._deferred = 0
        self._backlog: list[Any] | None = None
        self._backlog_task: asyncio.Task[None] | None = None
        self._method_frames: dict[tuple[str, str], bytes] = {}

    @classmethod
    async def open(
        cls,
        urls: Sequence[str],
        connection_name: str,
        setup: Callable[[Any], Awaitable[None]],
    ) -> AioLink:
        """Connect to the first of ``urls`` that answers, declare with ``setup(channel)``."""
        errors: list[str] = []
        connection: Any = None
        connected = ""
        for url in urls:
            try:
                connection = await aiormq.connect(
                    url, client_properties={"connection_name": connection_name}
                )
                connected = url
                break
            except CONNECTION_ERRORS as exc:
                errors.append(f"{describe_url(url)}: {exc!r}")
        if connection is None:
            raise PublishError(f"cannot connect to RabbitMQ at {'; '.join(errors)}")
        try:
            channel = await connection.channel(publisher_confirms=True)
            await setup(channel)
            link = cls(connection, channel)
            link.url = connected
            consume_ok = await channel.basic_consume(REPLY_TO, link._on_reply, no_ack=True)
            _Inbox.install(channel, link, consume_ok.consumer_tag)
        except BaseException:
            await asyncio.shield(_close_quietly(connection))
            raise
        connection.closing.add_done_callback(link._on_closed)
        channel.closing.add_done_callback(link._on_closed)
        return link

    @property
    def usable(self) -> bool:
        return self.lost is None and not self.connection.is_closed and not self.channel.is_closed

    def _on_closed(self, future: asyncio.Future[Any]) -> None:
        if self.lost is not None:
            return
        exc = None if future.cancelled() else future.exception()
        self.lost = exc or LinkLost("the RabbitMQ connection closed")
        waiters, self.waiters = self.waiters, {}
        for waiter in waiters.values():
            if not waiter.done():
                waiter.set_exception(LinkLost(f"connection to RabbitMQ lost: {self.lost!r}"))

    def _on_reply(self, message: Any) -> None:
        self._reply(message.header.properties.correlation_id, message.body)

    def _reply(self, correlation_id: str, body: bytes) -> None:
        waiter = self.waiters.pop(correlation_id, None)
        if waiter is None or waiter.done():
            log.debug("dropping a late reply (correlation id %s)", correlation_id)
        else:
            waiter.set_result(body)

    def enqueue(
        self, exchange: str, routing_key: str, body: bytes, properties: Any
    ) -> asyncio.Future[Any]:
        """Queue a mandatory publish; return the future of its confirm.

        The publishes of one event-loop tick leave together, in one write, at the end of the
        tick (aiormq's ``basic_publish`` takes a lock, queues one frame and waits for the socket
        to drain for each message: several task switches and a ``send()`` per message). The
        future fails with aiormq's PublishError when the broker returned the message,
        DeliveryError when it nacked it, the channel's error when the channel closed, and
        ChannelInvalidStateError when the message never left (the channel was closed before
        the write: safe to publish again). Cancelling it before the write keeps the message from
        being sent at all.
        """
        channel = self.channel
        if self.lost is not None or channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} closed")
        message_id = properties.message_id
        if not message_id:  # returns are matched to publishes by message id
            properties.message_id = message_id = new_id()
        number = channel.number
        key = (exchange, routing_key)
        method = self._method_frames.get(key)
        if method is None:
            method = pamqp.frame.marshal(
                spec.Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=True),
                number,
            )
            if len(self._method_frames) < 1000:
                self._method_frames[key] = method
        parts = [
            method,
            pamqp.frame.marshal(ContentHeader(properties=properties, body_size=len(body)), number),
        ]
        if body:
            size = channel.max_content_size
            for start in range(0, len(body), size):
                chunk = body[start : start + size]
                parts.append(_BODY_HEAD.pack(3, number, len(chunk)) + chunk + b"\xce")
        confirmation: asyncio.Future[Any] = channel.create_future()
        self._outbox.append((confirmation, message_id, b"".join(parts)))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            channel.loop.call_soon(self._flush)
        return confirmation

    def _flush(self) -> None:
        """Write what :meth:`enqueue` queued: delivery tags in write order."""
        # While the loop has other callbacks ready (replies being read, callers resuming), wait
        # for the calls they start, a few ticks at most: with many calls in flight, a write
        # then carries ~10 messages instead of ~3, and each write costs a send() here and a
        # wake-up of the broker. Only CPython's loop shows its ready queue; others write at once.
        ready = getattr(self.channel.loop, "_ready", None)
        if ready and self._deferred < _MAX_DEFERRED_TICKS:
            self._deferred += 1
            self.channel.loop.call_soon(self._flush)
            return
        self._deferred = 0
        self._flush_scheduled = False
        outbox, self._outbox = self._outbox, []
        channel = self.channel
        if self.lost is not None or channel.is_closed:
            for confirmation, _, _ in outbox:
                if not confirmation.done():
                    confirmation.set_exception(
                        aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} closed")
                    )
            return
        confirmations = channel.confirmations
        by_message_id = channel.message_id_delivery_tag
        payload = []
        for confirmation, message_id, frames in outbox:
            if confirmation.done():  # cancelled before it left: never sent
                continue
            channel.delivery_tag += 1
            tag = channel.delivery_tag
            confirmations[tag] = confirmation
            by_message_id[message_id] = tag
            confirmation.add_done_callback(
                functools.partial(_forget, by_message_id, message_id, tag)
            )
            payload.append(frames)
        if not payload:
            return
        frame = ChannelFrame(payload=b"".join(payload), should_close=False)
        if self._backlog is None:
            try:
                channel.write_queue.put_nowait(frame)
                return
            except asyncio.QueueFull:
                self._backlog = []
                self._backlog_task = channel.loop.create_task(self._write_backlog())
        self._backlog.append(frame)

    async def _write_backlog(self) -> None:
        # aiormq's writer is behind (its queue holds 10 frames): wait for room, in order.
        queue = self.channel.write_queue
        try:
            while self._backlog:
                await queue.put(self._backlog.pop(0))
        finally:
            self._backlog = None

    async def publish(self, exchange: str, routing_key: str, body: bytes, properties: Any) -> None:
        """Publish (mandatory) and wait for the confirm (errors: see :meth:`enqueue`)."""
        confirmation = self.enqueue(exchange, routing_key, body, properties)
        try:
            await confirmation
        except BaseException:
            confirmation.cancel()  # not sent yet: then it never is
            raise

    async def call(
        self, exchange: str, routing_key: str, body: bytes, properties: Any, deadline: float
    ) -> bytes:
        """Publish a request and wait for the reply with its correlation id until ``deadline``
        (the loop's clock); CallExpired after it.

        One await: a failed confirm (returned, nacked, channel closed) fails the reply's
        future. The confirm arrives before the reply, so a reply means the request was taken.
        """
        loop = self.channel.loop
        waiter: asyncio.Future[bytes] = loop.create_future()
        correlation_id = properties.correlation_id
        self.waiters[correlation_id] = waiter
        try:
            confirmation = self.enqueue(exchange, routing_key, body, properties)
        except BaseException:
            del self.waiters[correlation_id]
            raise
        confirmation.add_done_callback(functools.partial(_confirmed, waiter))
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            return await waiter
        except BaseException:
            confirmation.cancel()  # not sent yet: then it never is
            raise
        finally:
            timer.cancel()
            self.waiters.pop(correlation_id, None)

    async def close(self) -> None:
        if self._backlog_task is not None:
            self._backlog_task.cancel()
        await _close_quietly(self.connection)


_BODY_HEAD = struct.Struct(">BHI")


class _Inbox(asyncio.Queue[Any]):
    """The frame queue of an :class:`AioLink`'s channel, which also handles, as they arrive,
    the frames every call waits for: replies (deliveries to the direct reply-to consumer),
    returns and publisher confirms.

    aiormq's connection reader puts each frame of a channel in ``channel.frames``; the
    channel's reader task takes them one by one and starts a task per delivery for the consumer
    callback: three queue hand-overs and a task per reply. Here they are handled in the
    connection reader's ``put``; other frames (channel close, cancel, RPC replies) still go to
    aiormq's channel reader. Returns are handled here too, so that a return is always seen
    before the confirm that follows it. Confirms resolve the futures aiormq's publish
    bookkeeping holds (``channel.confirmations``), in delivery-tag order.
    """

    _link: AioLink
    _channel: Any
    _consumer_tag: str
    _message: list[Any] | None  # [method frame, content header or None, body chunks, size]

    @classmethod
    def install(cls, channel: Any, link: AioLink, consumer_tag: str) -> None:
        """Make ``channel.frames`` an inbox (it must be empty: right after set-up)."""
        frames = channel.frames
        if type(frames) is not asyncio.Queue or not frames.empty():  # pragma: no cover
            return  # another aiormq: leave its reader alone
        frames.__class__ = cls
        inbox: _Inbox = frames  # type: ignore[assignment]
        inbox._link, inbox._channel, inbox._consumer_tag = link, channel, consumer_tag
        inbox._message = None

    async def put(self, item: Any) -> None:
        if not self._take(item[1]):
            await super().put(item)

    def _take(self, frame: Any) -> bool:
        """Handle ``frame`` if it is part of a reply, a return or a confirm."""
        message = self._message
        if message is not None:
            if isinstance(frame, ContentHeader) and message[1] is None:
                message[1] = frame
            elif isinstance(frame, ContentBody) and message[1] is not None:
                message[2].append(frame.value)
                message[3] += len(frame.value)
            else:  # not what a content frame sequence has: let aiormq's reader complain
                self._message = None
                return False
            header = message[1]
            if header is not None and message[3] >= header.body_size:
                self._message = None
                self._complete(message[0], header, b"".join(message[2]))
            return True
        if isinstance(frame, spec.Basic.Deliver):
            if frame.consumer_tag != self._consumer_tag:
                return False
        elif isinstance(frame, spec.Basic.Return):
            pass
        elif isinstance(frame, (spec.Basic.Ack, spec.Basic.Nack)):
            self._confirm(frame)
            return True
        else:
            return False
        self._message = [frame, None, [], 0]
        return True

    def _complete(self, method: Any, header: Any, body: bytes) -> None:
        if isinstance(method, spec.Basic.Deliver):
            self._link._reply(header.properties.correlation_id, body)
            return
        # A return: fail the publish it belongs to (matched by message id, as aiormq does).
        channel = self._channel
        tag = channel.message_id_delivery_tag.get(header.properties.message_id)
        confirmation = channel.confirmations.get(tag) if tag is not None else None
        if confirmation is None or confirmation.done():
            log.debug("a returned message matches no publish in flight: %r", method)
            return
        delivered = aiormq.abc.DeliveredMessage(
            delivery=method, header=header, body=body, channel=channel
        )
        # The confirm that follows finds the future done and leaves it.
        confirmation.set_exception(aiormq.exceptions.PublishError(delivered, method))

    def _confirm(self, frame: Any) -> None:
        confirmations = self._channel.confirmations
        tag = frame.delivery_tag
        if frame.multiple:
            futures = []
            while confirmations:
                first = next(iter(confirmations))
                if first > tag:
                    break
                futures.append(confirmations.pop(first))
        else:
            future = confirmations.pop(tag, None)
            futures = [future] if future is not None else []
        ack = isinstance(frame, spec.Basic.Ack)
        for future in futures:
            if isinstance(future, asyncio.Future) and not future.done():
                if ack:
                    future.set_result(frame)
                else:
                    future.set_exception(aiormq.exceptions.DeliveryError(None, frame))


#: At most this many loop ticks between a publish and its write (see AioLink._flush).
_MAX_DEFERRED_TICKS = 8


def _forget(by_message_id: dict[str, int], message_id: str, tag: int, _: Any) -> None:
    if by_message_id.get(message_id) == tag:
        del by_message_id[message_id]


def _confirmed(waiter: asyncio.Future[bytes], confirmation: asyncio.Future[Any]) -> None:
    if waiter.done() or confirmation.cancelled():
        return
    exc = confirmation.exception()
    if exc is not None:
        waiter.set_exception(exc)


def _expire(waiter: asyncio.Future[bytes]) -> None:
    if not waiter.done():
        waiter.set_exception(CallExpired())


async def _close_quietly(connection: Any) -> None:
    try:
        await connection.close()
    except Exception:
        log.debug("error closing a RabbitMQ connection", exc_info=True)


class _AioBase(AsyncBackend):
    """One shared :class:`AioLink` per event loop; reconnects when it is lost."""

    _sync_class: type[RabbitMQBackend] | type[LegacyRabbitMQBackend]

    def __init__(self, *, settings: Settings | None = None, **options: Any) -> None:
        # The sync backend validates the options (worker options included) and reads settings.
        self.sync = self._sync_class(settings=settings, **options)
        super().__init__(settings=self.sync.settings)
        self.url = self.sync.url
        self._link: AioLink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._closed = False
        self.node = ""

    @property
    def confirm_timeout(self) -> float:
        """Seconds to wait for publisher confirms (default: ``ZC_EVENTS_TIMEOUT``)."""
        return self.sync.confirm_timeout

    async def setup_channel(self, channel: Any) -> None:
        """Declare what a fresh connection needs."""

    def _check_loop(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A new event loop (tests run one per test): the old loop's connection is unusable.
            self._loop, self._link, self._lock = loop, None, asyncio.Lock()
            self._on_new_loop()
        assert self._lock is not None
        return self._lock

    def _on_new_loop(self) -> None:
        """Forget per-loop resources (the legacy backend's Redis client)."""

    async def link(self) -> AioLink:
        """The shared link, connecting (once, whoever asks first) when there is none."""
        link = self._link
        if link is not None and link.usable and self._loop is asyncio.get_running_loop():
            return link
        lock = self._check_loop()
        async with lock:
            if self._closed:
                raise PublishError(f"the {self.name} backend is closed")
            link = self._link
            if link is None or not link.usable:
                if link is not None:
                    log.info(
                        "reconnecting to RabbitMQ (%s lost: %r)", describe_url(link.url), link.lost
                    )
                    self.sync.nodes.lost(describe_url(link.url))
                    asyncio.get_running_loop().create_task(link.close())
                try:
                    link = await AioLink.open(
                        self.sync.nodes.ordered(), self.sync.connection_name, self.setup_channel
                    )
                    #: The node (URL, password masked) the connection is on.
                    self.node = self.sync.nodes.connected(link.url)
                except aiormq.exceptions.ChannelClosed as exc:
                    from zc_events import ConfigurationError

                    raise ConfigurationError(
                        f"RabbitMQ refused the {self.name} client set-up: {exc}"
                    ) from exc
                self._link = link
            return link

    async def _publish(self, use: Callable[[AioLink], Awaitable[Any]], key: str) -> Any:
        """Run ``use(link)``; on a link found dead before anything was sent, once more on a
        fresh link. Maps aiormq's errors to ours."""
        for attempt in (1, 2):
            link = self._link
            if link is None or not link.usable or self._loop is not asyncio.get_running_loop():
                link = await self.link()
            try:
                return await use(link)
            except aiormq.exceptions.ChannelInvalidStateError:
                if attempt == 1:  # closed before the publish reached the socket
                    continue
                raise PublishError("connection to RabbitMQ lost") from None
            except aiormq.exceptions.DeliveryError as exc:
                raise self.publish_error(key, exc) from None
            except LINK_ERRORS as exc:
                raise PublishError(f"connection to RabbitMQ lost: {exc!r}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def publish_error(
        self, key: str, exc: aiormq.exceptions.DeliveryError
    ) -> NoRouteError | PublishError:
        """Our error for a publish the broker returned (NoRouteError) or nacked."""
        frame: Any = exc.frame
        if isinstance(exc, aiormq.exceptions.PublishError):  # a Basic.Return
            return self.no_route_error(key, f"{frame.reply_code} {frame.reply_text}")
        return PublishError(f"RabbitMQ did not take {key!r} (nacked by the broker)")

    def _outgoing(self, envelope: Envelope) -> Message:
        raise NotImplementedError

    def no_route_error(self, key: str, reason: str) -> NoRouteError:
        """The error for a message the broker returned (``reason``: "312 NO_ROUTE")."""
        return NoRouteError(
            f"no service handles key {key!r} (the broker returned the message: {reason})", key
        )

    async def send(self, envelope: Envelope) -> None:
        """Publish persistently; return after the broker's confirm. NoRouteError if unroutable."""
        error = (await self._confirm_all([envelope], [self._outgoing(envelope)]))[0]
        if error is not None:
            raise error

    async def send_many(self, envelopes: Sequence[Envelope]) -> None:
        """Publish all (written together, confirms pipelined); PublishError names the
        failures."""
        if not envelopes:
            return
        outgoing = [self._outgoing(env) for env in envelopes]
        results = await self._confirm_all(envelopes, outgoing)
        failed = [(env, exc) for env, exc in zip(envelopes, results, strict=True) if exc]
        if not failed:
            return
        if len(envelopes) == 1:
            raise failed[0][1]
        raise batch_error(failed, len(envelopes))

    async def _confirm_all(
        self, envelopes: Sequence[Envelope], outgoing: Sequence[Message]
    ) -> list[BaseException | None]:
        """Publish ``outgoing`` and wait for every confirm (``confirm_timeout`` in all): the
        error of each message, or None. Messages that never left (their channel closed first)
        are published once more on a fresh connection."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.confirm_timeout
        results: list[BaseException | None] = [None] * len(outgoing)
        todo = list(range(len(outgoing)))
        for attempt in (1, 2):
            try:
                link = self._link
                if link is None or not link.usable or self._loop is not loop:
                    link = await self.link()
                futures = {i: link.enqueue(*outgoing[i]) for i in todo}
            except aiormq.exceptions.ChannelInvalidStateError:
                continue  # found closed before anything was queued
            except PublishError as exc:  # cannot connect
                for i in todo:
                    results[i] = exc
                return results
            try:
                left = deadline - loop.time()
                if left > 0:
                    await asyncio.wait(futures.values(), timeout=left)
            finally:
                for future in futures.values():
                    future.cancel()  # not confirmed (or not sent yet: then never sent)
            todo = []
            for i, future in futures.items():
                key = envelopes[i].key
                if future.cancelled():
                    results[i] = PublishError(
                        f"RabbitMQ did not confirm {key!r} (id {envelopes[i].id}) within "
                        f"{self.confirm_timeout:g} s"
                    )
                    continue
                error = future.exception()
                if isinstance(error, aiormq.exceptions.ChannelInvalidStateError) and attempt == 1:
                    todo.append(i)  # never left: publish once more
                elif isinstance(error, aiormq.exceptions.DeliveryError):
                    results[i] = self.publish_error(key, error)
                elif error is not None:
                    lost = PublishError(f"connection to RabbitMQ lost: {error!r}")
                    lost.__cause__ = error
                    results[i] = lost
            if not todo:
                return results
        for i in todo:
            results[i] = PublishError("connection to RabbitMQ lost")
        return results

    async def aclose(self) -> None:
        """Close the connection. Calls made afterwards raise PublishError."""
        self._closed = True
        link, self._link = self._link, None
        if link is not None and self._loop is asyncio.get_running_loop():
            await link.close()
        self.sync.close()


class AsyncRabbitMQBackend(_AioBase):
    """The native ``rabbitmq`` transport for :class:`~zc_events.AsyncEventClient`.

    Takes the options of :class:`~zc_events_rabbitmq.RabbitMQBackend`.
    """

    name = "rabbitmq"
    _sync_class = RabbitMQBackend
    sync: RabbitMQBackend

    @property
    def exchange(self) -> str:
        return self.sync.exchange

    async def setup_channel(self, channel: Any) -> None:
        await channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)

    async def request(self, envelope: Envelope, timeout: float) -> Response:
        """Publish ``envelope`` (mandatory, expiring at its deadline) and await the reply."""
        key = envelope.key
        _check_routing_key(key)
        envelope.reply_to = envelope.reply_to or REPLY_TO  # keep what the client set (signed)
        body = self.sync.check_size(envelope, envelope.encode())
        self.sync.warn_priority(envelope)
        left = envelope.time_left()
        wait = timeout if left is None else min(timeout, left)
        if wait <= 0:
            raise RequestTimeout(
                f"{envelope.method} {key!r}: the deadline passed before it was sent", key, timeout
            )
        properties = spec.Basic.Properties(
            content_type=CONTENT_TYPE,
            priority=envelope.priority,
            correlation_id=envelope.id,
            message_id=envelope.id,
            reply_to=REPLY_TO,
            expiration=str(max(1, int(wait * 1000))),
        )
        exchange = self.exchange
        deadline = asyncio.get_running_loop().time() + wait

        async def use(link: AioLink) -> bytes:
            return await link.call(exchange, key, body, properties, deadline)

        try:
            reply = await self._publish(use, key)
        except CallExpired:
            raise RequestTimeout(
                f"no reply to {envelope.method} {key!r} within {timeout:g} s", key, timeout
            ) from None
        return Response.decode(reply)

    def no_route_error(self, key: str, reason: str) -> NoRouteError:
        return NoRouteError(
            f"no service handles key {key!r} on exchange {self.exchange!r} (the broker returned "
            f"the message: {reason})",
            key,
        )

    def _outgoing(self, envelope: Envelope) -> Message:
        _check_routing_key(envelope.key)
        envelope.reply_to = None
        self.sync.warn_priority(envelope)
        return (
            self.exchange,
            envelope.key,
            self.sync.check_size(envelope, envelope.encode()),
            spec.Basic.Properties(
                content_type=CONTENT_TYPE,
                delivery_mode=PERSISTENT,
                priority=envelope.priority,
                correlation_id=envelope.id,
                message_id=envelope.id,
            ),
        )


#: Longest single BLPOP: under redis-py's default socket timeout, as in the sync backend.
_MAX_BLPOP_WAIT = 2.0


class AsyncLegacyRabbitMQBackend(_AioBase):
    """The ``rabbitmq_legacy`` transport (the zc_events 0.4 wire) for asyncio.

    Takes the options of :class:`~zc_events_rabbitmq.LegacyRabbitMQBackend`; replies are read
    with ``redis.asyncio`` (BLPOP on the response key).
    """

    name = "rabbitmq_legacy"
    unknown_key_error = RequestTimeout
    _sync_class = LegacyRabbitMQBackend
    sync: LegacyRabbitMQBackend

    def __init__(self, *, settings: Settings | None = None, **options: Any) -> None:
        super().__init__(settings=settings, **options)
        self.events_exchange = self.sync.events_exchange
        self._redis: Any = None

    def _on_new_loop(self) -> None:
        self._redis = None

    @property
    def redis(self) -> Any:
        """The ``redis.asyncio`` client of the running loop that waits for replies."""
        self._check_loop()
        if self._redis is None:
            import redis.asyncio

            self._redis = redis.asyncio.Redis.from_url(self.sync.redis_url)
        return self._redis

    async def setup_channel(self, channel: Any) -> None:
        await channel.exchange_declare(self.events_exchange, exchange_type="fanout", durable=True)
        service = self.settings.get("SERVICE_NAME", None)
        if service:  # as the old client did (and the sync backend does)
            await channel.queue_declare(
                f"{service}-events", durable=True, arguments={"x-max-priority": MAX_PRIORITY}
            )

    def no_route_error(self, key: str, reason: str) -> NoRouteError:
        return NoRouteError(
            f"nothing is bound to the fanout exchange {self.events_exchange!r}, so no service "
            f"can answer {key!r} (the broker returned it: {reason})",
            key,
        )

    def _outgoing_for(self, envelope: Envelope, response_key: str | None) -> Message:
        message = legacy.build_request(envelope, response_key)
        self.sync.check_size(envelope, message.body)
        return (
            self.events_exchange,
            "",
            message.body,
            spec.Basic.Properties(**message.properties),
        )

    def _outgoing(self, envelope: Envelope) -> Message:
        envelope.reply_to = None
        return self._outgoing_for(envelope, None)

    async def request(self, envelope: Envelope, timeout: float) -> Response:
        """Publish the old request message and BLPOP its Redis reply list."""
        response_key = envelope.reply_to or new_id()  # keep the client's (signed)
        envelope.reply_to = response_key
        exchange, routing_key, body, properties = self._outgoing_for(envelope, response_key)
        left = envelope.time_left()
        wait = timeout if left is None else min(timeout, left)
        key = envelope.key
        redis = self.redis

        async def use(link: AioLink) -> None:
            await link.publish(exchange, routing_key, body, properties)

        try:
            async with asyncio.timeout(max(wait, 0.0)):
                await self._publish(use, key)
                raw = await self._wait_reply(redis, response_key)
        except TimeoutError:
            raise RequestTimeout(
                f"no reply to {key!r} within {timeout:g} s (legacy Redis reply list "
                f"{response_key!r})",
                key,
                timeout,
            ) from None
        except Exception as exc:
            import redis.exceptions

            if isinstance(exc, redis.exceptions.RedisError):
                raise ReplyError(
                    f"the request {key!r} was published, but its reply cannot be read from the "
                    f"reply store, Redis at {describe_url(self.sync.redis_url)}: {exc} (check "
                    "EVENTS_REDIS_URL or the backend option 'redis_url')"
                ) from exc
            raise
        return legacy.decode_response(raw)

    @classmethod
    async def _wait_reply(cls, redis: Any, response_key: str) -> bytes:
        # The BLPOPs run in their own task and this one waits on a plain future: cancelling the
        # caller then always cancels the call, whatever redis-py does with a cancellation that
        # reaches it mid-command (a timeout inside it can swallow one).
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()
        reader = loop.create_task(cls._blpop(redis, response_key))

        def on_done(_: asyncio.Task[bytes]) -> None:
            if not finished.done():
                finished.set_result(None)

        reader.add_done_callback(on_done)
        try:
            await finished
        finally:
            if not reader.done():
                reader.cancel()
        return reader.result()

    @staticmethod
    async def _blpop(redis: Any, response_key: str) -> bytes:
        # Short BLPOPs so that a socket timeout on the Redis client never ends the wait early;
        # the caller's asyncio.timeout bounds the whole wait.
        while True:
            try:
                item = await redis.blpop([response_key], timeout=_MAX_BLPOP_WAIT)
            except Exception as exc:
                if type(exc).__name__ != "TimeoutError":
                    raise
                continue
            if item:
                value = item[1]
                return value.encode("utf-8") if isinstance(value, str) else bytes(value)

    async def aclose(self) -> None:
        redis, self._redis = self._redis, None
        if redis is not None and self._loop is asyncio.get_running_loop():
            await redis.aclose()
        await super().aclose()
