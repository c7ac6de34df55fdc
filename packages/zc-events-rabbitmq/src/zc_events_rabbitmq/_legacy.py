"""The ``rabbitmq_legacy`` backend: the zc_events 0.4 wire.

Requests are Celery protocol-2 ``microservice.event`` task messages on the fanout exchange
``EVENTS_EXCHANGE`` (routing key ``''``); replies are ``RPUSH``/``EXPIRE 60`` on a Redis list the
caller waits on with ``BLPOP``. The messages are built and read by :mod:`zc_events.legacy`
and specified in docs/protocol.md, section 4; serving them is
:class:`zc_events_rabbitmq._consumers.LegacyConsumer`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import pika

from zc_events import (
    Dispatcher,
    Envelope,
    NoRouteError,
    RequestTimeout,
    Response,
    Settings,
    legacy,
    new_id,
)
from zc_events.legacy_redis import wait_reply

from ._amqp import Link, Outgoing
from ._base import RabbitMQBase
from ._consumers import MAX_PRIORITY, redis_client

__all__ = ["LegacyRabbitMQBackend"]

log = logging.getLogger("zc_events.rabbitmq.legacy")


class LegacyRabbitMQBackend(RabbitMQBase):
    """Client for services still on zc_events 0.4 (and for them to call us).

    Publishes exactly the old request message on the fanout exchange ``EVENTS_EXCHANGE`` and
    reads the reply from Redis with ``BLPOP``. Settings by their old names: ``BROKER_URL`` /
    ``CELERY_BROKER_URL``, ``EVENTS_REDIS_URL``, ``EVENTS_EXCHANGE``, ``SERVICE_NAME``; or the
    options ``url``, ``redis_url``, ``events_exchange``.

    Legacy notifications: :meth:`publish_notification` publishes them on
    ``NOTIFICATIONS_EXCHANGE`` (option ``notifications_exchange``), and the option
    ``notifications`` (kinds, e.g. ``["email"]``) makes :meth:`serve` bind the events queue to
    that topic exchange with ``microservice.notification.<kind>`` and dispatch each
    notification to the handler named by its event type.

    Unlike the old client it declares the service queue once per connection rather than before
    every publish, and it waits for a publisher confirm (invisible to peers), so a message the
    broker did not take raises instead of being lost. A key nobody handles cannot be detected
    on a fanout: the call ends in RequestTimeout, as before.

    :meth:`serve` consumes ``<SERVICE_NAME>-events`` only; to serve the native protocol too,
    run the ``rabbitmq`` backend's worker with ``legacy=True``.
    """

    name = "rabbitmq_legacy"
    unknown_key_error = RequestTimeout

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        events_exchange: str | None = None,
        notifications: Sequence[str] | None = None,
        notifications_exchange: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(settings=settings, **options)
        self.events_exchange = self.settings.events_exchange(
            events_exchange, who=f"{self.name} backend"
        )
        #: The notification kinds the worker consumes (option ``notifications``).
        self.notifications = legacy.notification_kinds(notifications, who=f"{self.name} backend")
        self._notifications_exchange = notifications_exchange
        if self.notifications:  # consumed: required now, not on the first message
            self._notifications_exchange = self.notifications_exchange
        self._redis: Any = None
        self._redis_lock = threading.Lock()

    @classmethod
    def async_backend_class(cls) -> Any:
        """The native asyncio backend (aiormq, the ``async`` extra), or None without it."""
        from ._aio_load import async_class

        return async_class("rabbitmq_legacy")

    @property
    def redis(self) -> Any:
        """The shared redis-py client that waits for replies."""
        if self._redis is None:
            with self._redis_lock:
                if self._redis is None:
                    self._redis = redis_client(self.redis_url)
        return self._redis

    @property
    def notifications_exchange(self) -> str:
        """The topic exchange of legacy notifications (option ``notifications_exchange``, else
        ``NOTIFICATIONS_EXCHANGE``); ConfigurationError when neither is set."""
        return self.settings.notifications_exchange(
            self._notifications_exchange, who=f"{self.name} backend"
        )

    def setup_channel(self, channel: Any) -> None:
        channel.exchange_declare(self.events_exchange, "fanout", durable=True)
        notifications = self._notifications_exchange or self.settings.get(
            "NOTIFICATIONS_EXCHANGE", None
        )
        if notifications:
            channel.exchange_declare(self.notifications_exchange, "topic", durable=True)
        service = self.settings.get("SERVICE_NAME", None)
        if service:  # the old client declared its own events queue (before every publish)
            channel.queue_declare(
                f"{service}-events", durable=True, arguments={"x-max-priority": MAX_PRIORITY}
            )

    def _outgoing(self, envelope: Envelope, response_key: str | None) -> Outgoing:
        message = legacy.build_request(envelope, response_key)
        self.check_size(envelope, message.body)
        return Outgoing(
            self.events_exchange, "", message.body, pika.BasicProperties(**message.properties)
        )

    def request(self, envelope: Envelope, timeout: float) -> Response:
        """Publish the old request message and BLPOP its Redis reply list.

        No publisher confirm here: the reply (or the timeout) says whether it arrived. The
        message is mandatory, so when no queue at all is bound to the exchange the timeout
        becomes NoRouteError.
        """
        # Keep a reply address the client chose (a signature covers it), else pick one.
        response_key = envelope.reply_to or new_id()
        envelope.reply_to = response_key
        message = self._outgoing(envelope, response_key)
        left = envelope.time_left()
        wait = timeout if left is None else min(timeout, left)
        redis = self.redis

        def publish(link: Link) -> Link:
            link.publish(message.exchange, message.routing_key, message.body, message.properties)
            return link

        link = self.call_link(publish, checkin=False)
        try:
            raw = wait_reply(redis, response_key, wait, key=envelope.key)
        except RequestTimeout:
            returned = link.returned()
            if returned is not None:
                raise NoRouteError(
                    f"nothing is bound to the fanout exchange {self.events_exchange!r}, so no "
                    f"service can answer {envelope.key!r} (the broker returned it: {returned})",
                    envelope.key,
                ) from None
            raise
        finally:
            self._checkin(link)
        return legacy.decode_response(raw)

    def send(self, envelope: Envelope) -> None:
        """Publish the old no-wait message (priority 0, no response key); return on confirm."""
        envelope.reply_to = None
        self.publish_confirmed([envelope], [self._outgoing(envelope, None)])

    def send_many(self, envelopes: Sequence[Envelope]) -> None:
        """Publish several no-wait messages, confirms pipelined."""
        for envelope in envelopes:
            envelope.reply_to = None
        if envelopes:
            self.publish_confirmed(envelopes, [self._outgoing(env, None) for env in envelopes])

    def publish_notification(self, kind: str, message: legacy.LegacyPublish) -> None:
        """Publish a legacy notification (:func:`zc_events.legacy.notification_message`) on
        ``NOTIFICATIONS_EXCHANGE`` with routing key ``microservice.notification.<kind>``, as
        the old ``emit_microservice_<kind>_notification`` did; return on the broker's confirm.

        Implements :class:`zc_events.legacy.NotificationPublisher`. Unlike the old client it
        publishes with ``mandatory``: NoRouteError when no queue is bound for ``kind`` (no
        service consumes these notifications) instead of losing the message.
        """
        routing_key = legacy.notification_routing_key(kind)
        exchange = self.notifications_exchange
        placeholder = Envelope(routing_key)  # names the message in errors
        self.check_size(placeholder, message.body)
        outgoing = Outgoing(
            exchange, routing_key, message.body, pika.BasicProperties(**message.properties)
        )
        try:
            self.publish_confirmed([placeholder], [outgoing])
        except NoRouteError as exc:
            raise NoRouteError(
                f"no queue is bound to the notifications exchange {exchange!r} with "
                f"{routing_key!r}: no service consumes {kind} notifications (the broker "
                "returned the message)",
                routing_key,
            ) from exc

    def serve(self, dispatcher: Dispatcher | None = None) -> None:
        """Consume ``<SERVICE_NAME>-events`` and answer old-format requests until :meth:`stop`
        (and the notifications of the kinds in the option ``notifications``)."""
        from ._consumers import legacy_consumer
        from ._worker import Worker

        dispatcher = dispatcher if dispatcher is not None else self.default_dispatcher()
        consumer = legacy_consumer(
            self,
            dispatcher,
            self.events_exchange,
            notifications=self.notifications,
            notifications_exchange=self._notifications_exchange,
        )
        Worker(self, [consumer]).run(self.stopping)

    def close(self) -> None:
        super().close()
        if self._redis is not None:
            self._redis.close()
