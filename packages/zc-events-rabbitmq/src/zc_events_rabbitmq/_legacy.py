"""The ``rabbitmq_legacy`` backend and legacy serving: the zc_events 0.4 wire.

Requests are Celery protocol-2 ``microservice.event`` task messages on the fanout exchange
``EVENTS_EXCHANGE`` (routing key ``''``); replies are ``RPUSH``/``EXPIRE 60`` on a Redis list the
caller waits on with ``BLPOP``. The messages are built and read by :mod:`zc_events.legacy`
and specified in docs/protocol.md, section 4.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

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
    legacy,
    new_id,
)

from ._amqp import Link, Outgoing
from ._base import RabbitMQBase
from ._worker import MAX_PRIORITY

__all__ = ["LegacyConsumer", "LegacyRabbitMQBackend", "legacy_consumer"]

log = logging.getLogger("zc_events.rabbitmq.legacy")


def events_exchange_setting(settings: Settings, option: str | None, backend: str) -> str:
    """The fanout exchange: the backend option ``events_exchange``, else ``EVENTS_EXCHANGE``."""
    value = option or settings.get("EVENTS_EXCHANGE", None)
    if not value or not isinstance(value, str):
        raise ConfigurationError(
            f"the {backend} backend needs the fanout exchange of the old fleet: set "
            "EVENTS_EXCHANGE (or the backend option 'events_exchange')"
        )
    return value


def redis_client(url: str) -> Any:
    """A redis-py client for ``url`` (replies live in the database the URL names)."""
    import redis

    return redis.Redis.from_url(url)


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
        self.events_exchange = events_exchange_setting(self.settings, events_exchange, self.name)
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
            raw = legacy.wait_reply(redis, response_key, wait, key=envelope.key)
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
        from ._worker import Worker

        dispatcher = dispatcher if dispatcher is not None else self.default_dispatcher()
        Worker(self, [legacy_consumer(self, dispatcher, self.events_exchange)]).run(self.stopping)

    def close(self) -> None:
        super().close()
        if self._redis is not None:
            self._redis.close()


def _encode(envelope: Envelope, response: Response) -> bytes:
    """The legacy reply bytes; a result that is not JSON becomes an error naming the key."""
    try:
        return legacy.dumps_legacy(legacy.response_dict(response))
    except TypeError as exc:
        log.error("handler for %r returned a value that is not JSON: %s", envelope.key, exc)
        return legacy.encode_response(
            Response.error(
                "TypeError",
                f"handler for {envelope.key!r} returned a value that cannot be encoded as JSON: "
                f"{exc}",
            )
        )


def legacy_consumer(
    backend: RabbitMQBase, dispatcher: Dispatcher, events_exchange: str | None
) -> LegacyConsumer:
    """The legacy consumer for ``backend``'s settings (``SERVICE_NAME``, ``EVENTS_EXCHANGE``)."""
    exchange = events_exchange_setting(backend.settings, events_exchange, backend.name)
    return LegacyConsumer(
        exchange, backend.settings.service_name, dispatcher, redis_client(backend.redis_url)
    )


class LegacyConsumer:
    """Serves old-format requests from ``<service>-events`` (bound to the fanout exchange).

    Keys this service does not handle are acknowledged and ignored: the other services on the
    fanout answer them. Deprecated protocol-1 events go to the handler named by the event type
    with the keyword arguments as ``request.data``. Messages that cannot be read are moved to
    ``<service>.dead`` with a log line.
    """

    def __init__(self, exchange: str, service: str, dispatcher: Dispatcher, redis: Any) -> None:
        self.exchange = exchange
        self.queue = f"{service}-events"
        self.dead_queue = f"{service}.dead"
        self.dispatcher = dispatcher
        self.redis = redis

    def declare(self, channel: Any) -> None:
        # Exactly what the old Celery worker declared, or the channel fails with
        # PRECONDITION_FAILED against queues the old fleet created.
        channel.exchange_declare(self.exchange, "fanout", durable=True)
        channel.queue_declare(self.queue, durable=True, arguments={"x-max-priority": MAX_PRIORITY})
        channel.queue_bind(self.queue, self.exchange, routing_key="")
        channel.queue_declare(self.dead_queue, durable=True)

    def _dead_letter(
        self, channel: Any, method: Any, properties: Any, body: bytes, why: str
    ) -> None:
        log.error(
            "moving an unreadable legacy message from %r to %r (delivery %s, %d bytes): %s",
            self.queue,
            self.dead_queue,
            method.delivery_tag,
            len(body),
            why,
        )
        headers = dict(properties.headers or {})
        headers["x-zc-events-error"] = why[:1000]
        headers["x-zc-events-queue"] = self.queue
        properties.headers = headers
        properties.delivery_mode = 2
        channel.basic_publish("", self.dead_queue, body, properties)
        channel.basic_ack(method.delivery_tag)

    def handle(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        try:
            request = legacy.parse_request(
                body, properties.headers, max_bytes=self.dispatcher.max_message_bytes
            )
        except EnvelopeError as exc:
            self._dead_letter(channel, method, properties, body, str(exc))
            return
        if request.task != legacy.EVENT_TASK:
            self._dead_letter(channel, method, properties, body, f"unknown task {request.task!r}")
            return
        envelope = request.envelope
        if not self.dispatcher.handles(envelope.key):
            log.debug("ignoring legacy %r: another service on the fanout handles it", envelope.key)
            channel.basic_ack(method.delivery_tag)
            return
        response = self.dispatcher.dispatch(envelope)
        if request.response_key:
            legacy.push_reply(self.redis, request.response_key, _encode(envelope, response))
        elif response.has_errors:
            log.error(
                "legacy no-wait %s %r (id %s) failed: %s",
                envelope.method,
                envelope.key,
                envelope.id,
                response.errors[0].get("trace") or response.errors,
            )
        channel.basic_ack(method.delivery_tag)

    def close(self) -> None:
        self.redis.close()
