"""The native ``rabbitmq`` backend (exchange, queues, properties: docs/protocol.md, section 3)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import pika

from zc_events import (
    ConfigurationError,
    Dispatcher,
    Envelope,
    EnvelopeError,
    NoRouteError,
    RequestTimeout,
    Response,
    Settings,
)
from zc_events import legacy as legacy_codec

from ._amqp import REPLY_TO, Link, Outgoing
from ._base import RabbitMQBase, positive_int

__all__ = ["DEFAULT_EXCHANGE", "RabbitMQBackend"]

log = logging.getLogger("zc_events.rabbitmq")

DEFAULT_EXCHANGE = "zc-events"
CONTENT_TYPE = "application/json"
PERSISTENT: Literal[2] = 2
#: The queue types of option ``queue_type``.
QUEUE_TYPES = ("classic", "quorum")
DEFAULT_DELIVERY_LIMIT = 5


def _check_routing_key(key: str) -> None:
    # AMQP short strings are at most 255 bytes; envelope keys are at most 255 characters.
    if not key.isascii() and len(key.encode()) > 255:
        raise EnvelopeError(
            f"key {key[:40]!r}... is longer than 255 bytes in UTF-8, the AMQP limit", "key"
        )


class RabbitMQBackend(RabbitMQBase):
    """Native RabbitMQ transport: a topic exchange, direct reply-to, publisher confirms.

    Options (``ZC_EVENTS_BACKEND_OPTIONS``):

    - ``url``: AMQP URL (default ``BROKER_URL``, ``CELERY_BROKER_URL``, then the local broker).
    - ``exchange``: the topic exchange (default ``zc-events``).
    - ``connection_name``: shown by ``rabbitmqctl list_connections`` (default names the
      service and pid).
    - ``confirm_timeout``: seconds to wait for publisher confirms (default ``ZC_EVENTS_TIMEOUT``).
    - ``url`` may name several nodes of a cluster, separated by ``;`` (or a list): clients and
      workers use the first that answers and move to the next when they lose it.

    Worker options: ``queue`` (default ``SERVICE_NAME``; poison messages go to
    ``<queue>.dead``), ``prefetch`` (unacknowledged messages per consumer thread, default 10),
    ``concurrency`` (consumer threads, each with its own connection, default 4), ``legacy``
    (also serve the zc_events 0.4 protocol on ``<SERVICE_NAME>-events``, default False, with
    ``events_exchange`` and ``redis_url`` as for ``rabbitmq_legacy``), ``notifications`` (with
    ``legacy=True``: the legacy notification kinds to consume, e.g. ``["email"]``, from
    ``NOTIFICATIONS_EXCHANGE`` or the option ``notifications_exchange``), ``queue_type``
    (``classic``, the default, or ``quorum``: replicated on a cluster, without priorities on
    RabbitMQ 3.x) and ``delivery_limit`` (quorum queues: the broker dead-letters a message
    delivered more than this many times, default 5).
    """

    name = "rabbitmq"

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        exchange: str = DEFAULT_EXCHANGE,
        queue: str | None = None,
        legacy: bool = False,
        events_exchange: str | None = None,
        notifications: Sequence[str] | None = None,
        notifications_exchange: str | None = None,
        queue_type: str = "classic",
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
        **options: Any,
    ) -> None:
        super().__init__(settings=settings, **options)
        if queue_type not in QUEUE_TYPES:
            raise ConfigurationError(
                f"rabbitmq backend option 'queue_type' must be 'classic' or 'quorum', got "
                f"{queue_type!r}"
            )
        #: ``classic`` or ``quorum``: the type of the service queue and its dead-letter queue.
        self.queue_type = queue_type
        #: Quorum queues: deliveries after which the broker dead-letters a message.
        self.delivery_limit = positive_int(self.name, "delivery_limit", delivery_limit)
        self._priority_warned: set[str] = set()
        if not isinstance(exchange, str) or not exchange:
            raise ConfigurationError(
                f"rabbitmq backend option 'exchange' must be a non-empty string, got {exchange!r}"
            )
        if queue is not None and (not isinstance(queue, str) or not queue):
            raise ConfigurationError(
                f"rabbitmq backend option 'queue' must be a non-empty string, got {queue!r}"
            )
        self.exchange = exchange
        self._queue = queue
        self.legacy = bool(legacy)
        self._events_exchange = events_exchange
        self.notifications = legacy_codec.notification_kinds(notifications, who="rabbitmq backend")
        if self.notifications and not self.legacy:
            raise ConfigurationError(
                "rabbitmq backend option 'notifications' needs legacy=True: notifications "
                "arrive on the legacy events queue <SERVICE_NAME>-events"
            )
        self._notifications_exchange = notifications_exchange
        if self.notifications:  # consumed: required now, not on the first message
            self.settings.notifications_exchange(notifications_exchange, who="rabbitmq backend")

    @property
    def queue(self) -> str:
        """The service queue the worker consumes (option ``queue``, else ``SERVICE_NAME``)."""
        return self._queue or self.settings.service_name

    def setup_channel(self, channel: Any) -> None:
        channel.exchange_declare(self.exchange, "topic", durable=True)

    @classmethod
    def async_backend_class(cls) -> Any:
        """The native asyncio backend (aiormq, the ``async`` extra), or None without it."""
        from ._aio_load import async_class

        return async_class("rabbitmq")

    def warn_priority(self, envelope: Envelope) -> None:
        """Log a WARNING, once per key, when a prioritised message goes to a quorum queue
        (quorum queues ignore priorities on RabbitMQ 3.x)."""
        if envelope.priority and self.queue_type == "quorum":
            priority_ignored(envelope.key, self._priority_warned)

    # -- client side ------------------------------------------------------------------------
    def request(self, envelope: Envelope, timeout: float) -> Response:
        """Publish ``envelope`` (mandatory, expiring at its deadline) and wait for the reply."""
        key = envelope.key
        _check_routing_key(key)
        # The reply goes to the AMQP reply_to property; the envelope field only says that a
        # reply is due, and keeps what the client set (a signature covers it).
        envelope.reply_to = envelope.reply_to or REPLY_TO
        body = self.check_size(envelope, envelope.encode())
        self.warn_priority(envelope)
        left = envelope.time_left()
        wait = timeout if left is None else min(timeout, left)
        if wait <= 0:
            raise RequestTimeout(
                f"{envelope.method} {key!r}: the deadline passed before it was sent", key, timeout
            )
        properties = pika.BasicProperties(
            content_type=CONTENT_TYPE,
            priority=envelope.priority,
            correlation_id=envelope.id,
            message_id=envelope.id,
            reply_to=REPLY_TO,
            expiration=str(max(1, int(wait * 1000))),
        )

        def use(link: Link) -> tuple[bytes | None, str | None]:
            return link.call(self.exchange, key, body, properties, wait)

        reply, returned = self.call_link(use)
        if reply is not None:
            return Response.decode(reply)
        if returned is not None:
            raise NoRouteError(
                f"no service handles key {key!r} on exchange {self.exchange!r} "
                f"(the broker returned the message: {returned})",
                key,
            )
        raise RequestTimeout(
            f"no reply to {envelope.method} {key!r} within {timeout:g} s", key, timeout
        )

    def _outgoing(self, envelope: Envelope) -> Outgoing:
        _check_routing_key(envelope.key)
        envelope.reply_to = None
        self.warn_priority(envelope)
        return Outgoing(
            self.exchange,
            envelope.key,
            self.check_size(envelope, envelope.encode()),
            pika.BasicProperties(
                content_type=CONTENT_TYPE,
                delivery_mode=PERSISTENT,
                priority=envelope.priority,
                correlation_id=envelope.id,
                message_id=envelope.id,
            ),
        )

    def send(self, envelope: Envelope) -> None:
        """Publish persistently; return after the broker's confirm. NoRouteError if unroutable."""
        self.publish_confirmed([envelope], [self._outgoing(envelope)])

    def send_many(self, envelopes: Sequence[Envelope]) -> None:
        """Publish all, confirms pipelined, one wait; PublishError names the failures."""
        if envelopes:
            self.publish_confirmed(envelopes, [self._outgoing(env) for env in envelopes])

    # -- server side ------------------------------------------------------------------------
    def serve(self, dispatcher: Dispatcher | None = None) -> None:
        """Consume the service queue (and the legacy queue with ``legacy=True``) until
        :meth:`stop`, then finish in-flight messages. See :class:`~zc_events_rabbitmq.Worker`."""
        from ._consumers import legacy_consumer
        from ._worker import Worker

        dispatcher = dispatcher if dispatcher is not None else self.default_dispatcher()
        consumers: list[Any] = [self.native_consumer(dispatcher)]
        if self.legacy:
            consumers.append(
                legacy_consumer(
                    self,
                    dispatcher,
                    self._events_exchange,
                    notifications=self.notifications,
                    notifications_exchange=self._notifications_exchange,
                )
            )
        from ._aio_worker import offload_async

        consumers[0] = offload_async(consumers[0], dispatcher)  # async def handlers: on a loop
        Worker(self, consumers).run(self.stopping)

    def native_consumer(self, dispatcher: Dispatcher) -> Any:
        """The consumer of the native service queue (used by :meth:`serve`)."""
        from ._consumers import NativeConsumer

        return NativeConsumer(
            self.exchange,
            self.queue,
            dispatcher,
            self.settings,
            queue_type=self.queue_type,
            delivery_limit=self.delivery_limit,
        )


def priority_ignored(key: str, warned: set[str]) -> None:
    """The WARNING for a prioritised message on a quorum queue, once per key in ``warned``."""
    if key in warned:
        return
    warned.add(key)
    log.warning(
        "a message for %r has a priority, but the service queues are quorum queues "
        "(queue_type='quorum'), which ignore priorities on RabbitMQ 3.x: it is served in "
        "arrival order (said once per key)",
        key,
    )
