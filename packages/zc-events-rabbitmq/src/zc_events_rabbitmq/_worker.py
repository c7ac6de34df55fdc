"""The worker loop: consumer threads that hand each delivery to its queue's consumer.

The consumers (what is done with one message: :mod:`zc_events_rabbitmq._consumers`) are given to
the :class:`Worker`, which owns the connections.

Each of ``concurrency`` threads owns one connection and one channel (pika connections are not
thread-safe) with ``prefetch`` unacknowledged messages, consumes every queue of the worker
(the native service queue and, when enabled, the legacy ``<SERVICE_NAME>-events`` queue), runs
handlers inline, and reconnects with backoff when the broker goes away. On :meth:`stop` each
thread finishes the message it is handling, hands the others back to the broker, and exits.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Any

import pika
import pika.exceptions

from zc_events import ConfigurationError

from ._amqp import (
    CONNECTION_ERRORS,
    coalesce_output,
    describe_connection_error,
    describe_url,
    impl_of,
    is_refused,
    quiet_pika,
    wait_until,
)

if TYPE_CHECKING:
    from ._base import RabbitMQBase
    from ._consumers import Consumer

__all__ = ["Worker"]

log = logging.getLogger("zc_events.rabbitmq.worker")

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0
#: How often an idle consumer thread looks at the stop flag.
POLL_SECONDS = 0.2
#: A consumer thread that has not come back to its I/O loop for this long (its handler hangs)
#: does not count as consuming for :meth:`Worker.is_consuming` (``--health-file``).
WEDGED_AFTER = 60.0


class _Fatal(Exception):
    """A problem reconnecting cannot fix: a refused login, vhost or permission, or a queue
    declared with other arguments. The worker stops and raises ``__cause__``."""


class Worker:
    """Serves ``consumers`` with ``backend.concurrency`` threads until ``stopping`` is set.

    Start-up and outages: the worker says "consuming" only once every thread consumes. A
    broker that cannot be reached (or goes away) is retried with exponential backoff, one
    thread at a time, so an outage logs one WARNING line per attempt however many threads
    wait, and one INFO line once the connection is back. A refused login, virtual host or
    permission stops the worker at once with a ConfigurationError.
    """

    def __init__(self, backend: RabbitMQBase, consumers: list[Consumer]) -> None:
        self.backend = backend
        self.consumers = consumers
        self.fatal: BaseException | None = None
        self._stopping = threading.Event()
        self._url = describe_url(backend.url)
        self._nodes = backend.nodes.copy()
        #: Thread number -> the node (URL, password masked) its connection is on now.
        self.nodes: dict[int, str] = {}
        self._connect_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._attempt = 0
        self._delay = BACKOFF_FIRST
        self._lost = False
        self._started: set[int] = set()
        self._ready = threading.Event()
        self._consuming: set[int] = set()  # the threads connected and consuming now
        self._beats: dict[int, float] = {}  # thread -> when it last ran its I/O loop
        backend.worker = self

    def is_consuming(self) -> bool:
        """True while some consumer thread is connected and consuming, and has run its I/O
        loop within :data:`WEDGED_AFTER` seconds (not stuck in a handler that hangs)."""
        now = time.monotonic()
        beats = self._beats
        return any(now - beats.get(n, now) < WEDGED_AFTER for n in list(self._consuming))

    def run(self, stopping: threading.Event) -> None:
        """Consume until ``stopping`` is set, then finish in-flight messages and return.

        Raises ConfigurationError when the broker refuses the login, the virtual host, a
        permission or the queue set-up.
        """
        self._stopping = stopping
        pika_log = logging.getLogger("pika")
        if pika_log.level == logging.NOTSET:  # pika logs every connect at INFO
            pika_log.setLevel(logging.WARNING)
        queues = ", ".join(c.queue for c in self.consumers)
        threads = [
            threading.Thread(target=self._thread, args=(n,), name=f"zc-events-rabbitmq-{n}")
            for n in range(self.backend.concurrency)
        ]
        for t in threads:
            t.start()
        announced = False
        try:
            while not stopping.is_set() and any(t.is_alive() for t in threads):
                if announced:
                    stopping.wait(0.5)
                elif self._ready.wait(0.1) and not stopping.is_set():
                    announced = True
                    log.info(
                        "consuming %s at %s with %d thread(s), prefetch %d",
                        queues,
                        ", ".join(sorted(set(self.nodes.values()))) or self._url,
                        self.backend.concurrency,
                        self.backend.prefetch,
                    )
        finally:
            stopping.set()
            for t in threads:
                t.join()
            for consumer in self.consumers:
                consumer.close()
        if self.fatal is not None:
            raise self.fatal
        if self._started:
            log.info("stopped consuming %s", queues)
        else:
            log.info("stopped before RabbitMQ at %s could be reached", self._url)

    # -- connecting ----------------------------------------------------------------------------
    def _refused(self, exc: BaseException, connecting: bool = True) -> ConfigurationError:
        where = (
            f"cannot connect to RabbitMQ at {self._url}"
            if connecting
            else f"RabbitMQ at {self._url} refused the worker's queue set-up"
        )
        return ConfigurationError(f"{where}: {describe_connection_error(exc)}")

    def _connect(self) -> tuple[Any, str] | tuple[None, None]:
        """A new connection and its node, retried with backoff until one of the nodes
        answers; ``(None, None)`` once stopping.

        One thread tries at a time: the others wait for it, then connect at once.
        """
        while not self._stopping.is_set():
            if not self._connect_lock.acquire(timeout=POLL_SECONDS):
                continue
            try:
                while not self._stopping.is_set():
                    try:
                        connection, node = self._nodes.connect(pika.BlockingConnection)
                    except CONNECTION_ERRORS as exc:
                        if is_refused(exc):
                            raise _Fatal() from self._refused(exc)
                        self._attempt += 1
                        wait = self._delay * random.uniform(0.8, 1.2)
                        log.warning(
                            "cannot connect to RabbitMQ at %s: %s; retrying in %.1f s (attempt %d)",
                            self._url,
                            describe_connection_error(exc),
                            wait,
                            self._attempt,
                        )
                        self._stopping.wait(wait)
                        self._delay = min(self._delay * 2, BACKOFF_MAX)
                        continue
                    with self._state_lock:
                        if self._lost:
                            self._lost = False
                            log.info("reconnected to RabbitMQ at %s", node)
                    self._attempt, self._delay = 0, BACKOFF_FIRST
                    return connection, node
            finally:
                self._connect_lock.release()
        return None, None

    def _connection_lost(self, exc: BaseException, node: str) -> None:
        self._nodes.lost(node)
        with self._state_lock:
            if self._lost:  # another thread said so already
                return
            self._lost = True
        log.warning(
            "lost the connection to RabbitMQ at %s (%s); reconnecting",
            node,
            describe_connection_error(exc),
        )

    # -- one consumer thread -------------------------------------------------------------------
    def _thread(self, n: int) -> None:
        with quiet_pika():
            try:
                self._serve(n)
            except _Fatal as exc:
                self.fatal = exc.__cause__ or exc
                self._stopping.set()

    def _serve(self, n: int) -> None:
        while not self._stopping.is_set():
            connection, node = self._connect()
            if connection is None or node is None:
                return
            self.nodes[n] = node
            try:
                self._consume(connection, n)
                return
            except _Fatal:
                raise
            except Exception as exc:
                if self._stopping.is_set():
                    return
                if is_refused(exc):  # e.g. no permission on the queue
                    raise _Fatal() from self._refused(exc, connecting=False)
                if isinstance(exc, CONNECTION_ERRORS):
                    self._connection_lost(exc, node)
                else:  # a bug: keep the worker alive, but say so loudly
                    log.exception("thread %d: unexpected error; reconnecting in 1 s", n)
                    self._stopping.wait(1.0)
            finally:
                self._consuming.discard(n)
                if connection.is_open:
                    try:
                        connection.close()
                    except Exception:
                        log.debug("error closing a worker connection", exc_info=True)

    def _consume(self, connection: Any, n: int) -> None:
        setup = connection.channel()
        try:
            for consumer in self.consumers:
                consumer.declare(setup)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if is_refused(exc):
                raise
            from ._consumers import explain_declare_error

            queue_type = getattr(self.backend, "queue_type", "classic")
            explained = explain_declare_error(str(exc.reply_text), queue_type)
            if explained is not None:
                raise _Fatal() from ConfigurationError(
                    f"RabbitMQ at {self._url} refused the worker's queue set-up: {explained}"
                )
            queues = ", ".join(c.queue for c in self.consumers)
            raise _Fatal() from ConfigurationError(
                f"RabbitMQ at {self._url} refused the set-up of {queues}: {exc.reply_code} "
                f"{exc.reply_text} (a queue or exchange of that name exists with other arguments "
                "or type: delete it or choose another name)"
            )
        stopping = self._stopping
        # One channel per queue. Deliveries are handled straight from pika's I/O loop on the
        # asynchronous channel object, and a reply and its ack leave in one send.
        channels = []
        for consumer in self.consumers:
            channel = connection.channel()
            channel.basic_qos(prefetch_count=self.backend.prefetch)
            channels.append(channel)
            started: list[bool] = []

            def ready(started: list[bool] = started, channel: Any = channel) -> bool:
                return bool(started) or bool(channel.is_closed)

            channel._impl.basic_consume(
                consumer.queue,
                self._callback(connection, consumer),
                callback=lambda _frame, started=started: started.append(True),
            )
            wait_until(connection, ready, 30)
            _raise_if_closed(channel)
        setup.close()
        with self._state_lock:
            self._started.add(n)
            self._beats[n] = time.monotonic()
            self._consuming.add(n)
            if len(self._started) == self.backend.concurrency:
                self._ready.set()
        beats = self._beats
        while not stopping.is_set():
            wait_until(
                connection,
                lambda: stopping.is_set() or any(c.is_closed for c in channels),
                POLL_SECONDS,
            )
            beats[n] = time.monotonic()
            for channel in channels:
                _raise_if_closed(channel)
        # Messages whose async handler still runs on the worker's loop reply and ack from here.
        # (in_flight is optional: only consumers that hand messages to an event loop have it.)
        busy = [
            (in_flight, impl_of(ch))
            for c, ch in zip(self.consumers, channels, strict=True)
            if (in_flight := getattr(c, "in_flight", None)) is not None
        ]
        if busy:
            wait_until(
                connection,
                lambda: all(in_flight(ch) == 0 or ch.is_closed for in_flight, ch in busy),
                self.backend.settings.timeout,
            )
        connection.close()  # the broker requeues whatever was delivered but not acknowledged

    def _callback(self, connection: Any, consumer: Consumer) -> Any:
        stopping = self._stopping

        def on_message(channel: Any, method: Any, properties: Any, body: bytes) -> None:
            if stopping.is_set():  # hand prefetched messages back; another worker takes them
                channel.basic_nack(method.delivery_tag, requeue=True)
            else:
                consumer.handle(channel, method, properties, body)
            coalesce_output(connection)

        return on_message


def _raise_if_closed(channel: Any) -> None:
    """Raise why ``channel`` closed (the broker's error, when it closed it)."""
    if channel.is_closed:
        reason = channel._closing_reason
        if isinstance(reason, BaseException):
            raise reason
        raise pika.exceptions.ChannelClosed(-1, f"a consumer channel closed: {reason}")
