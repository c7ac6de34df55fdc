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
        **options: Any,
    ) -> None:
        super().__init__(settings=settings, **options)
        self.events_exchange = self.settings.events_exchange(
            events_exchange, who=f"{self.name} backend"
        )
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

    def setup_channel(self, channel: Any) -> None:
        channel.exchange_declare(self.events_exchange, "fanout", durable=True)
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

    def serve(self, dispatcher: Dispatcher | None = None) -> None:
        """Consume ``<SERVICE_NAME>-events`` and answer old-format requests until :meth:`stop`."""
        from ._consumers import legacy_consumer
        from ._worker import Worker

        dispatcher = dispatcher if dispatcher is not None else self.default_dispatcher()
        Worker(self, [legacy_consumer(self, dispatcher, self.events_exchange)]).run(self.stopping)

    def close(self) -> None:
        super().close()
        if self._redis is not None:
            self._redis.close()
