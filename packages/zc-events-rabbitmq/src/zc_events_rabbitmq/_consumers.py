"""The queues a worker consumes, side by side: the native service queue and the legacy one.

Both consumers turn one delivery into one :class:`zc_events.serving.Outcome` (the serving
itself is in the core, shared with every transport) and then do the AMQP part: reply, then
acknowledge; or publish a copy with ``x-zc-events-*`` error headers to the dead-letter queue,
then acknowledge. Nothing but a connection error ever leaves :meth:`QueueConsumer.handle`, so
one bad message never tears down the connection or wedges the worker.

The delivery limit (``ZC_EVENTS_MAX_DELIVERIES``) works on classic queues by counting in the
message: a delivery flagged ``redelivered`` (the worker that had it died) is put back at the end
of the queue with a failure count, and dead-lettered once the count reaches the limit. On
quorum queues the broker's ``x-delivery-count`` is used instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import pika

from zc_events import ConfigurationError, Dispatcher, Settings, legacy
from zc_events.serving import (
    FAILURES_HEADER,
    LegacyServer,
    Outcome,
    delivery_decision,
    serve_native,
    too_many_deliveries,
)

from ._amqp import CONNECTION_ERRORS, REPLY_TO

if TYPE_CHECKING:
    from ._base import RabbitMQBase

__all__ = ["MAX_PRIORITY", "Consumer", "LegacyConsumer", "NativeConsumer", "legacy_consumer"]

log = logging.getLogger("zc_events.rabbitmq.worker")

MAX_PRIORITY = 10
PERSISTENT: Literal[2] = 2
#: What RabbitMQ's direct reply-to turns ``amq.rabbitmq.reply-to`` into on delivery.
DIRECT_REPLY_PREFIX = REPLY_TO + "."


class Consumer(Protocol):
    """One queue a worker consumes, and how to handle its messages."""

    queue: str

    def declare(self, channel: Any) -> None:
        """Declare the queue, its exchange and bindings (idempotent; on every connect)."""

    def handle(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        """Handle one delivery, then acknowledge or dead-letter it on ``channel``."""

    def close(self) -> None:
        """Release resources when the worker stops."""


class QueueConsumer:
    """What both consumers share: the delivery limit, dead-lettering, and never raising."""

    queue: str
    dead_queue: str
    protocol = ""

    def __init__(self, settings: Settings) -> None:
        self.max_deliveries = settings.max_deliveries
        self.dead_letter_failed_no_wait = settings.dead_letter_failed_no_wait

    def serve(self, body: bytes, properties: Any) -> Outcome:
        """Serve one message (no AMQP I/O); never raises."""
        raise NotImplementedError

    def send_reply(self, channel: Any, method: Any, properties: Any, outcome: Outcome) -> None:
        """Send ``outcome.reply`` back to the caller, if the transport replies over AMQP."""

    def handle(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        failures = self.admit(channel, method, properties, body)
        if failures is None:
            return
        try:
            outcome = self.serve(body, properties)
        except Exception as exc:  # a bug: dead-letter rather than loop on the message
            outcome = Outcome(dead_letter=f"serving failed: {type(exc).__name__}: {exc}")
        self.complete(channel, method, properties, body, outcome, failures)

    def admit(self, channel: Any, method: Any, properties: Any, body: bytes) -> int | None:
        """Apply the delivery limit. Returns the earlier failed deliveries of a message to
        serve now, or None when the message was put back in the queue or dead-lettered."""
        try:
            decision, failures = delivery_decision(
                properties.headers, bool(method.redelivered), self.max_deliveries
            )
            if decision == "requeue":
                self._requeue(channel, method, properties, body, failures)
                return None
            if decision == "dead_letter":
                outcome = too_many_deliveries(failures, self.max_deliveries)
                self._dead_letter(channel, method, properties, body, outcome, failures)
                return None
        except CONNECTION_ERRORS:
            raise
        except Exception as exc:  # unreadable headers: serve it once more, then the limit
            log.warning("cannot apply the delivery limit on %r: %r", self.queue, exc)
            return 0
        return failures

    def complete(
        self,
        channel: Any,
        method: Any,
        properties: Any,
        body: bytes,
        outcome: Outcome,
        failures: int,
    ) -> None:
        """Reply and acknowledge, or dead-letter, a served message. Raises only connection
        errors."""
        if outcome.ack:
            try:
                self.send_reply(channel, method, properties, outcome)
            except CONNECTION_ERRORS:
                raise
            except Exception as exc:
                log.error("could not reply to %r (id %s): %r", outcome.key, outcome.id, exc)
            channel.basic_ack(method.delivery_tag)
        else:
            self._dead_letter(channel, method, properties, body, outcome, failures + 1)

    @staticmethod
    def _copy_properties(properties: Any, headers: dict[str, Any]) -> Any:
        """A persistent copy of pika's (or pamqp's) delivery ``properties``, new ``headers``."""
        timestamp = getattr(properties, "timestamp", None)
        if timestamp is not None and not isinstance(timestamp, int):
            timestamp = int(timestamp.timestamp())  # pamqp gives a datetime
        return pika.BasicProperties(
            content_type=properties.content_type,
            content_encoding=properties.content_encoding,
            headers=headers,
            delivery_mode=PERSISTENT,
            priority=properties.priority,
            correlation_id=properties.correlation_id,
            reply_to=properties.reply_to,
            message_id=properties.message_id,
            timestamp=timestamp,
            type=getattr(properties, "type", None) or getattr(properties, "message_type", None),
            app_id=properties.app_id,
        )

    def _requeue(
        self, channel: Any, method: Any, properties: Any, body: bytes, failures: int
    ) -> None:
        log.warning(
            "a message on %r was delivered before and never acknowledged (a worker died "
            "handling it?): putting it back at the end of the queue, %d of %d deliveries used "
            "(ZC_EVENTS_MAX_DELIVERIES)",
            self.queue,
            failures,
            self.max_deliveries,
        )
        headers = {**(properties.headers or {}), FAILURES_HEADER: failures}
        copy = self._copy_properties(properties, headers)
        copy.expiration = properties.expiration
        channel.basic_publish("", self.queue, body, copy)
        channel.basic_ack(method.delivery_tag)

    def _dead_letter(
        self,
        channel: Any,
        method: Any,
        properties: Any,
        body: bytes,
        outcome: Outcome,
        attempts: int,
    ) -> None:
        headers = outcome.dead_letter_copy(
            properties.headers,
            queue=self.queue,
            dead_queue=self.dead_queue,
            attempts=attempts,
            what=(
                f"a {self.protocol}message (routing key {method.routing_key!r}, delivery "
                f"{method.delivery_tag}, {len(body)} bytes)"
            ),
            logger=log,
        )
        # No expiration on the copy: a dead letter stays until someone looks at it.
        channel.basic_publish("", self.dead_queue, body, self._copy_properties(properties, headers))
        channel.basic_ack(method.delivery_tag)

    def close(self) -> None:
        pass


class NativeConsumer(QueueConsumer):
    """The service queue of the native protocol: bound to the topic exchange once per key,
    ``x-max-priority: 10``, poison messages dead-lettered to ``<queue>.dead``.

    Replies go only to RabbitMQ direct reply-to names (``amq.rabbitmq.reply-to.*``): a request
    naming any other queue is handled, and its reply dropped with a warning.
    """

    def __init__(
        self,
        exchange: str,
        queue: str,
        dispatcher: Dispatcher,
        settings: Settings,
        *,
        queue_type: str = "classic",
        delivery_limit: int = 5,
    ) -> None:
        super().__init__(settings)
        self.exchange = exchange
        self.queue = queue
        self.dead_exchange = f"{exchange}.dead"
        self.dead_queue = f"{queue}.dead"
        self.dispatcher = dispatcher
        self.queue_type = queue_type
        self.delivery_limit = delivery_limit
        self._priority_warned: set[str] = set()

    def queue_arguments(self) -> dict[str, Any]:
        """The arguments of the service queue for :attr:`queue_type`."""
        if self.queue_type == "quorum":
            # No priorities on RabbitMQ 3.x quorum queues. At-most-once dead-lettering: with
            # at-least-once the broker would keep every expired request (its dead letter
            # matches no binding, on purpose) in the queue, retrying it for ever.
            return {
                "x-queue-type": "quorum",
                "x-delivery-limit": self.delivery_limit,
                "x-dead-letter-exchange": self.dead_exchange,
            }
        return {"x-max-priority": MAX_PRIORITY, "x-dead-letter-exchange": self.dead_exchange}

    def declare(self, channel: Any) -> None:
        channel.exchange_declare(self.exchange, "topic", durable=True)
        # A headers exchange that keeps only *rejected* messages of this queue (and, on quorum
        # queues, those over the delivery limit): requests that merely expired (nobody waits
        # for them any more) are dropped, not dead-lettered.
        channel.exchange_declare(self.dead_exchange, "headers", durable=True)
        channel.queue_declare(self.queue, durable=True, arguments=self.queue_arguments())
        channel.queue_declare(
            self.dead_queue, durable=True, arguments=dead_queue_arguments(self.queue_type)
        )
        for reason in ("rejected", "delivery_limit"):
            channel.queue_bind(
                self.dead_queue,
                self.dead_exchange,
                arguments={
                    "x-match": "all-with-x",
                    "x-first-death-queue": self.queue,
                    "x-first-death-reason": reason,
                },
            )
        for key in self.dispatcher.keys():  # noqa: SIM118 - a Dispatcher is not a dict
            if {"*", "#"} & set(key.split(".")):
                log.warning("key %r contains a topic wildcard word; it binds as a pattern", key)
            channel.queue_bind(self.queue, self.exchange, routing_key=key)

    def handle(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        if properties.priority and self.queue_type == "quorum":
            from ._native import priority_ignored

            priority_ignored(method.routing_key, self._priority_warned)
        super().handle(channel, method, properties, body)

    def serve(self, body: bytes, properties: Any) -> Outcome:
        return serve_native(
            self.dispatcher, body, dead_letter_failed_no_wait=self.dead_letter_failed_no_wait
        )

    def send_reply(self, channel: Any, method: Any, properties: Any, outcome: Outcome) -> None:
        if outcome.reply is None:
            return
        reply_to = properties.reply_to
        if not reply_to or not reply_to.startswith(DIRECT_REPLY_PREFIX):
            log.warning(
                "not replying to %r (id %s): its reply_to %r is not a RabbitMQ direct reply-to "
                "name (amq.rabbitmq.reply-to.*); reply dropped",
                outcome.key,
                outcome.id,
                reply_to,
            )
            return
        channel.basic_publish(
            "",
            reply_to,
            outcome.reply,
            pika.BasicProperties(
                content_type="application/json", correlation_id=properties.correlation_id
            ),
        )


def redis_client(url: str) -> Any:
    """A redis-py client for ``url`` (replies live in the database the URL names)."""
    import redis

    return redis.Redis.from_url(url)


def legacy_consumer(
    backend: RabbitMQBase,
    dispatcher: Dispatcher,
    events_exchange: str | None,
    *,
    notifications: Sequence[str] = (),
    notifications_exchange: str | None = None,
) -> LegacyConsumer:
    """The legacy consumer for ``backend``'s settings (``SERVICE_NAME``, ``EVENTS_EXCHANGE``,
    and ``NOTIFICATIONS_EXCHANGE`` when it consumes ``notifications``)."""
    who = f"{backend.name} backend"
    exchange = backend.settings.events_exchange(events_exchange, who=who)
    kinds = legacy.notification_kinds(notifications, who=who)
    topic = (
        backend.settings.notifications_exchange(notifications_exchange, who=who) if kinds else None
    )
    return LegacyConsumer(
        exchange,
        backend.settings.service_name,
        dispatcher,
        redis_client(backend.redis_url),
        backend.settings,
        notifications=kinds,
        notifications_exchange=topic,
        dead_queue_type=getattr(backend, "queue_type", "classic"),
    )


def dead_queue_arguments(queue_type: str) -> dict[str, Any]:
    """The arguments of ``<service>.dead``: a quorum queue next to quorum service queues."""
    return {"x-queue-type": "quorum"} if queue_type == "quorum" else {}


def explain_declare_error(reply_text: str, queue_type: str) -> str | None:
    """What to do about a queue that exists with another type than ``queue_type``, from the
    broker's PRECONDITION_FAILED text; None when the mismatch is not about the type."""
    match = re.search(r"inequivalent arg '([^']+)' for queue '([^']*)'", reply_text)
    if match is None:
        return None
    arg, queue = match.groups()
    if arg == "x-queue-type":
        existing = "classic" if reply_text.rstrip().endswith("current is none") else "quorum"
    elif arg == "x-max-priority" and queue_type == "quorum" and "received none" in reply_text:
        existing = "classic"
    else:
        return None
    if existing == queue_type:
        return None
    return (
        f"queue {queue!r} exists as a {existing} queue, but the backend option queue_type is "
        f"{queue_type!r}: a queue cannot change type. Set queue_type={existing!r}, or drain the "
        f"queue and delete it (rabbitmqctl delete_queue {queue}) so that the worker declares it "
        f"as a {queue_type} queue"
    )


class LegacyConsumer(QueueConsumer):
    """Serves old-format requests from ``<service>-events`` (bound to the fanout exchange).

    Keys this service does not handle are acknowledged and ignored: the other services on the
    fanout answer them. Deprecated protocol-1 events go to the handler named by the event type
    with the keyword arguments as ``request.data``. Messages that cannot be served, and
    ``response_key`` values that are not UUIDs, are moved to ``<service>.dead`` (Redis is not
    touched) with one log line.
    """

    protocol = "legacy "

    def __init__(
        self,
        exchange: str,
        service: str,
        dispatcher: Dispatcher,
        redis: Any,
        settings: Settings,
        *,
        notifications: Sequence[str] = (),
        notifications_exchange: str | None = None,
        dead_queue_type: str = "classic",
    ) -> None:
        super().__init__(settings)
        self.dead_queue_type = dead_queue_type
        self.exchange = exchange
        self.notifications = tuple(notifications)
        if self.notifications and not notifications_exchange:
            raise ConfigurationError(
                "consuming legacy notifications needs NOTIFICATIONS_EXCHANGE "
                "(or notifications_exchange=)"
            )
        self.notifications_exchange = notifications_exchange
        self.queue = f"{service}-events"
        self.dead_queue = f"{service}.dead"
        self.dispatcher = dispatcher
        self.redis = redis
        self.server = LegacyServer(dispatcher, lambda: self.redis, settings=settings)

    def declare(self, channel: Any) -> None:
        # Exactly what the old Celery worker declared, or the channel fails with
        # PRECONDITION_FAILED against queues the old fleet created.
        channel.exchange_declare(self.exchange, "fanout", durable=True)
        channel.queue_declare(self.queue, durable=True, arguments={"x-max-priority": MAX_PRIORITY})
        channel.queue_bind(self.queue, self.exchange, routing_key="")
        if self.notifications:
            channel.exchange_declare(self.notifications_exchange, "topic", durable=True)
            for kind in self.notifications:
                channel.queue_bind(
                    self.queue,
                    self.notifications_exchange,
                    routing_key=legacy.notification_routing_key(kind),
                )
        channel.queue_declare(
            self.dead_queue, durable=True, arguments=dead_queue_arguments(self.dead_queue_type)
        )

    def serve(self, body: bytes, properties: Any) -> Outcome:
        return self.server.serve_body(body, properties.headers)

    def close(self) -> None:
        self.redis.close()
