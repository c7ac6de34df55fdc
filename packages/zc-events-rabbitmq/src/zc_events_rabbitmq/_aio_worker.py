"""The asyncio worker: serves ``async def`` handlers concurrently on one event loop (aiormq).

Used by ``RabbitMQBackend.serve`` when the dispatcher has ``async def`` handlers (and aiormq is
installed). One connection, one channel per queue with ``prefetch`` unacknowledged messages:
each delivery runs in its own task, so with ``prefetch=100`` a hundred requests to a handler
that awaits I/O are served at once. Messages for sync handlers run the sync consumer's own
``handle`` on a pool of ``concurrency`` threads, as in the threaded worker; the legacy queue
(``legacy=True``) is served by the threaded worker alongside.

Replies and acknowledgements are written with :class:`FrameWriter`: it puts the AMQP frames
straight on aiormq's write queue (``Channel.write_queue``, ``ChannelFrame.marshall``), in call
order and from any thread, which the coroutine API cannot do (it takes a lock and a task per
call). Those aiormq names are used only in this module (aiormq is pinned to ``<8``).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import logging
import random
import threading
from typing import TYPE_CHECKING, Any

import aiormq
import pika
import pika.exceptions
from aiormq.abc import ChannelFrame
from pamqp import commands as spec
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from zc_events import ConfigurationError, Dispatcher, EnvelopeError

from ._aio import CONNECTION_ERRORS
from ._aio_load import is_async
from ._amqp import describe_url
from ._worker import BACKOFF_FIRST, BACKOFF_MAX, Consumer, Worker

if TYPE_CHECKING:
    from ._base import RabbitMQBase

__all__ = ["AsyncWorker", "FrameWriter"]

log = logging.getLogger("zc_events.rabbitmq.worker")

_PIKA_TO_PAMQP = {
    "content_type": "content_type",
    "content_encoding": "content_encoding",
    "headers": "headers",
    "delivery_mode": "delivery_mode",
    "priority": "priority",
    "correlation_id": "correlation_id",
    "reply_to": "reply_to",
    "expiration": "expiration",
    "message_id": "message_id",
    "timestamp": "timestamp",
    "type": "message_type",
    "user_id": "user_id",
    "app_id": "app_id",
}


def _properties(properties: Any) -> Any:
    """pamqp properties from pika's ``BasicProperties`` (or pamqp's own, unchanged)."""
    if isinstance(properties, spec.Basic.Properties):
        return properties
    values = {}
    for pika_name, pamqp_name in _PIKA_TO_PAMQP.items():
        value = getattr(properties, pika_name, None)
        if value is not None:
            if pamqp_name == "timestamp" and isinstance(value, int | float):
                import datetime

                value = datetime.datetime.fromtimestamp(value, datetime.UTC)
            values[pamqp_name] = value
    return spec.Basic.Properties(**values)


class FrameWriter:
    """The pika ``Channel`` methods the consumers use (``basic_publish``, ``basic_ack``,
    ``basic_reject``, ``basic_nack``) on an aiormq channel, synchronous and in call order.

    ``threadsafe=True`` hands each frame to the event loop with ``call_soon_threadsafe``, for
    consumers that run on a worker thread.
    """

    def __init__(self, channel: Any, loop: asyncio.AbstractEventLoop, threadsafe: bool) -> None:
        self._channel = channel
        self._number = channel.number
        self._queue = channel.write_queue
        self._loop = loop
        self._threadsafe = threadsafe
        # Frames waiting for room in aiormq's bounded write queue, in order.
        self._backlog: collections.deque[Any] = collections.deque()
        self._flusher: asyncio.Task[None] | None = None

    def _write(self, frames: list[Any]) -> None:
        if self._channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError("the consumer channel is closed")
        frame = ChannelFrame.marshall(channel_number=self._number, frames=frames)
        if self._threadsafe:
            self._loop.call_soon_threadsafe(self._put, frame)
        else:
            self._put(frame)

    def _put(self, frame: Any) -> None:
        if not self._backlog:
            try:
                self._queue.put_nowait(frame)
                return
            except asyncio.QueueFull:
                pass
        self._backlog.append(frame)
        if self._flusher is None or self._flusher.done():
            self._flusher = self._loop.create_task(self._flush())

    async def _flush(self) -> None:
        while self._backlog:
            await self._queue.put(self._backlog[0])
            self._backlog.popleft()

    def basic_publish(
        self, exchange: str, routing_key: str, body: bytes, properties: Any = None
    ) -> None:
        frames: list[Any] = [
            spec.Basic.Publish(exchange=exchange, routing_key=routing_key),
            ContentHeader(
                properties=_properties(properties) if properties is not None else None,
                body_size=len(body),
            ),
        ]
        size = self._channel.max_content_size
        frames += [ContentBody(body[i : i + size]) for i in range(0, len(body), size)]
        self._write(frames)

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self._write([spec.Basic.Ack(delivery_tag=delivery_tag, multiple=multiple)])

    def basic_reject(self, delivery_tag: int, requeue: bool = True) -> None:
        self._write([spec.Basic.Reject(delivery_tag=delivery_tag, requeue=requeue)])

    def basic_nack(self, delivery_tag: int, multiple: bool = False, requeue: bool = True) -> None:
        self._write(
            [spec.Basic.Nack(delivery_tag=delivery_tag, multiple=multiple, requeue=requeue)]
        )


class _Fatal(Exception):
    """A problem reconnecting cannot fix (a queue declared with other arguments)."""


class AsyncWorker:
    """Serves the native ``consumer`` on an event loop until ``stopping`` is set; ``others``
    (the legacy consumer) are served by the threaded :class:`~zc_events_rabbitmq.Worker`."""

    def __init__(
        self,
        backend: RabbitMQBase,
        consumer: Consumer,
        dispatcher: Dispatcher,
        others: list[Consumer] | None = None,
    ) -> None:
        self.backend = backend
        self.consumer = consumer
        self.dispatcher = dispatcher
        self.others = others or []
        self.fatal: BaseException | None = None
        self._inflight: set[asyncio.Task[Any]] = set()

    def run(self, stopping: threading.Event) -> None:
        """Consume until ``stopping`` is set, then finish in-flight messages and return."""
        pika_log = logging.getLogger("pika")
        if pika_log.level == logging.NOTSET:  # pika logs every connect at INFO
            pika_log.setLevel(logging.WARNING)
        side: threading.Thread | None = None
        side_worker: Worker | None = None
        if self.others:
            side_worker = Worker(self.backend, self.others)
            side = threading.Thread(
                target=side_worker.run, args=(stopping,), name="zc-events-rabbitmq-legacy"
            )
            side.start()
        log.info(
            "consuming %s at %s on an event loop (async handlers), prefetch %d, %d thread(s) "
            "for sync handlers",
            self.consumer.queue,
            describe_url(self.backend.url),
            self.backend.prefetch,
            self.backend.concurrency,
        )
        try:
            asyncio.run(self._main(stopping))
        finally:
            stopping.set()
            if side is not None:
                side.join()
            self.consumer.close()
        if self.fatal is not None:
            raise self.fatal
        if side_worker is not None and side_worker.fatal is not None:
            raise side_worker.fatal
        log.info("stopped consuming %s", self.consumer.queue)

    async def _main(self, stopping: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        threading.Thread(
            target=lambda: (stopping.wait(), loop.call_soon_threadsafe(stop.set)),
            daemon=True,
            name="zc-events-rabbitmq-stop",
        ).start()
        pool = concurrent.futures.ThreadPoolExecutor(
            self.backend.concurrency, thread_name_prefix="zc-events-rabbitmq-sync"
        )
        delay = BACKOFF_FIRST
        try:
            while not stop.is_set():
                consuming = False
                try:
                    await asyncio.to_thread(self._declare)
                    connection = await aiormq.connect(
                        self.backend.url.split(";")[0].strip(),
                        client_properties={"connection_name": self.backend.connection_name},
                    )
                    try:
                        consuming = True
                        await self._consume(connection, pool, stop)
                        return
                    finally:
                        await self._drain()
                        if not connection.is_closed:
                            await connection.close()
                except _Fatal as exc:
                    self.fatal = exc.__cause__ or exc
                    return
                except Exception as exc:
                    if stop.is_set():
                        return
                    if consuming:
                        delay = BACKOFF_FIRST
                    wait = delay * random.uniform(0.8, 1.2)
                    if isinstance(exc, CONNECTION_ERRORS):
                        log.warning(
                            "RabbitMQ connection failed (%r); reconnecting in %.1f s", exc, wait
                        )
                    else:
                        log.exception("unexpected error; reconnecting in %.1f s", wait)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), wait)
                    delay = min(delay * 2, BACKOFF_MAX)
        finally:
            pool.shutdown(wait=True)

    def _declare(self) -> None:
        """Declare the queue, exchanges and bindings with the sync consumer's own code."""
        connection = pika.BlockingConnection(self.backend._params)
        try:
            channel = connection.channel()
            try:
                self.consumer.declare(channel)
            except pika.exceptions.ChannelClosedByBroker as exc:
                raise _Fatal() from ConfigurationError(
                    f"RabbitMQ refused the set-up of {self.consumer.queue}: {exc.reply_code} "
                    f"{exc.reply_text} (a queue or exchange of that name exists with other "
                    "arguments or type: delete it or choose another name)"
                )
        finally:
            if connection.is_open:
                connection.close()

    async def _consume(
        self, connection: Any, pool: concurrent.futures.Executor, stop: asyncio.Event
    ) -> None:
        loop = asyncio.get_running_loop()
        channel = await connection.channel(publisher_confirms=False)
        await channel.basic_qos(prefetch_count=self.backend.prefetch)
        writer = FrameWriter(channel, loop, threadsafe=False)
        threaded = FrameWriter(channel, loop, threadsafe=True)
        consumer = self.consumer
        dispatcher = self.dispatcher
        inflight = self._inflight

        async def on_message(message: Any) -> None:
            method = message.delivery
            task = asyncio.current_task()
            if task is not None:
                inflight.add(task)
            try:
                if stop.is_set():  # hand prefetched messages back; another worker takes them
                    writer.basic_nack(method.delivery_tag, requeue=True)
                    return
                properties = message.header.properties
                if is_async(dispatcher.handler_for(method.routing_key)):
                    await self._handle_async(writer, method, properties, message.body)
                else:
                    await loop.run_in_executor(
                        pool, consumer.handle, threaded, method, properties, message.body
                    )
            finally:
                if task is not None:
                    inflight.discard(task)

        ok = await channel.basic_consume(consumer.queue, on_message)
        closing = asyncio.ensure_future(channel.closing)
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({closing, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if closing.done():
            exc = None if closing.cancelled() else closing.exception()
            raise exc or aiormq.exceptions.ChannelClosed(None, "the consumer channel closed")
        closing.cancel()
        if not channel.is_closed:
            await channel.basic_cancel(ok.consumer_tag)

    async def _handle_async(
        self, writer: FrameWriter, method: Any, props: Any, body: bytes
    ) -> None:
        """Serve one message for an ``async def`` handler; reply, then acknowledge."""
        try:
            reply = await self.dispatcher.ahandle(body)
        except EnvelopeError as exc:
            log.error(
                "dead-lettering an undecodable message (routing key %r, delivery %s, %d bytes): %s",
                method.routing_key,
                method.delivery_tag,
                len(body),
                exc,
            )
            writer.basic_reject(method.delivery_tag, requeue=False)
            return
        except Exception:
            log.exception(
                "dead-lettering a message that could not be handled (routing key %r)",
                method.routing_key,
            )
            writer.basic_reject(method.delivery_tag, requeue=False)
            return
        if reply is not None:
            if props.reply_to:
                writer.basic_publish(
                    "",
                    props.reply_to,
                    reply,
                    spec.Basic.Properties(
                        content_type="application/json", correlation_id=props.correlation_id
                    ),
                )
            else:
                log.warning(
                    "a request for %r (id %s) has no reply_to property; reply dropped",
                    method.routing_key,
                    props.correlation_id,
                )
        writer.basic_ack(method.delivery_tag)

    async def _drain(self) -> None:
        """Wait for the messages being handled (the stop flag hands back the rest)."""
        current = asyncio.current_task()
        tasks = [t for t in self._inflight if t is not current]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
