"""The ``celery`` backend: publish through a Celery app, reply through Redis.

The messages are the zc_events 0.4 wire: see docs/protocol.md, section 4.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import TYPE_CHECKING, Any, ClassVar

from kombu import Exchange
from kombu import serialization as _serialization
from kombu.exceptions import EncodeError

from zc_events import (
    Backend,
    ConfigurationError,
    Dispatcher,
    Envelope,
    EnvelopeError,
    NoRouteError,
    PublishError,
    RequestTimeout,
    Response,
    Settings,
    json_dumps,
    legacy,
)
from zc_events.legacy_redis import wait_reply

from ._install import install, installation, resolve_names

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["SERIALIZER", "CeleryBackend"]

log = logging.getLogger("zc_events_celery")

#: The kombu serializer the backend publishes with: strict JSON with zc-events' own encoder
#: (``zc_events.json_dumps``: orjson or ujson when installed), so data that is not JSON is
#: refused before it is sent. Content type ``application/json``: any Celery
#: worker, old or new, reads it with its own JSON decoder.
SERIALIZER = "zc-events-json"


def _register_serializer() -> None:
    registry = _serialization.registry  # type: ignore[attr-defined]  # missing from the stubs
    name = registry.type_to_name.get("application/json")
    # An encoder only (decoder None): incoming application/json keeps kombu's own decoder.
    _serialization.register(
        SERIALIZER,
        json_dumps,  # type: ignore[arg-type]  # kombu takes bytes too; the stubs say str
        None,
        content_type="application/json",
        content_encoding="utf-8",
    )
    if name is not None:
        registry.type_to_name["application/json"] = name


_register_serializer()


class _FixedRoute:
    """A Celery router that always answers the same destination (the app's routes are skipped)."""

    __slots__ = ("destination",)

    def __init__(self, destination: dict[str, Any]) -> None:
        self.destination = destination

    def route(
        self,
        options: dict[str, Any],
        name: str,
        args: Any = (),
        kwargs: Any = None,
        task_type: Any = None,
    ) -> dict[str, Any]:
        return {**self.destination, **options}


def load_app(app: Any) -> Celery:
    """A Celery app from an instance or a ``"module:attribute"`` / ``"module.attribute"`` path."""
    from celery import Celery

    if isinstance(app, str):
        from kombu.utils.imports import symbol_by_name

        try:
            app = symbol_by_name(app)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ConfigurationError(
                f"celery backend option 'app' names {app!r}, which cannot be imported: {exc}"
            ) from exc
    if not isinstance(app, Celery):
        raise ConfigurationError(
            f"celery backend option 'app' must be a Celery app or its dotted path "
            f"('proj.celery:app'), got {app!r}"
        )
    return app


class CeleryBackend(Backend):
    """Calls go out as ``microservice.event`` tasks through a Celery app; replies come back on
    Redis lists, as in zc_events 0.4, so old and new services answer each other.

    Options (``ZC_EVENTS_BACKEND_OPTIONS`` or keyword arguments):

    - ``app``: the service's Celery app, or its path (``"proj.celery:app"``). Without it, an app
      is made for the broker ``url`` (else ``BROKER_URL`` / ``CELERY_BROKER_URL``, else local).
    - ``redis_url``: where replies go (else ``EVENTS_REDIS_URL``, else ``redis://localhost:6379/0``).
    - ``events_exchange``: the fanout events exchange (else ``EVENTS_EXCHANGE``; required).
    - ``queue``: the service's queue for :meth:`serve` (else ``<SERVICE_NAME>-events``).
    - ``confirm_publish`` (default True): ``*_no_wait`` returns only once RabbitMQ confirmed it.
    - ``pool`` (default ``"threads"``) and ``concurrency`` (default 8): the worker of :meth:`serve`.
    - ``notifications_exchange``: the topic exchange of legacy notifications (else
      ``NOTIFICATIONS_EXCHANGE``, else the one given to ``install()``; required to publish or
      consume them); ``notifications``: the kinds :meth:`serve` consumes (as ``install()``).

    A key nobody handles cannot be detected on a fanout: such calls raise RequestTimeout.
    """

    name: ClassVar[str] = "celery"
    unknown_key_error: ClassVar[type[Exception]] = RequestTimeout

    def __init__(self, *, settings: Settings | None = None, **options: Any) -> None:
        app = options.pop("app", None)
        url = options.pop("url", None)
        redis_url = options.pop("redis_url", None)
        exchange = options.pop("events_exchange", None)
        queue = options.pop("queue", None)
        notifications_exchange = options.pop("notifications_exchange", None)
        self.notifications = legacy.notification_kinds(
            options.pop("notifications", None), who="celery backend"
        )
        self.confirm_publish = bool(options.pop("confirm_publish", True))
        self.pool = str(options.pop("pool", "threads"))
        self.concurrency = int(options.pop("concurrency", 8))
        super().__init__(settings=settings, **options)
        if app is not None:
            if url is not None:
                raise ConfigurationError("celery backend takes 'app' or 'url', not both")
            self.app = load_app(app)
            self._own_app = False
        else:
            from celery import Celery

            self.app = Celery(
                "zc_events_celery",
                broker=self.settings.broker_url({"url": url}),
                set_as_current=False,
            )
            self._own_app = True
        inst = installation(self.app)
        if inst is not None:
            # The app was set up by install(): its exchange, queue and reply store are the
            # service's, unless given here.
            exchange = exchange if exchange is not None else inst.exchange
            queue = queue if queue is not None else inst.queue.name
            redis_url = redis_url if redis_url is not None else inst.redis_url
            if notifications_exchange is None:
                notifications_exchange = inst.notifications_exchange
        self.redis_url = self.settings.redis_url({"redis_url": redis_url})
        self.exchange_name, self.queue_name = resolve_names(
            self.settings, exchange=exchange, queue=queue
        )
        self._notifications_exchange = notifications_exchange
        if self.notifications:  # consumed by serve(): required now, not on the first message
            self.settings.notifications_exchange(notifications_exchange, who="celery backend")
        self._exchange = Exchange(self.exchange_name, type="fanout", durable=True)
        base = {
            "exchange": self._exchange,
            "exchange_type": "fanout",
            "routing_key": "",
            "declare": [self._exchange],
            "serializer": SERIALIZER,
        }
        self._route_waiting = _FixedRoute({**base, "delivery_mode": 1})
        self._route_no_wait = _FixedRoute({**base, "delivery_mode": 2})
        self._lock = threading.Lock()
        self._redis: Any = None
        self._confirm_connection: Any = None
        self._confirm_producers: Any = None
        self._worker: Any = None

    # -- connections ---------------------------------------------------------------------
    def _redis_client(self) -> Any:
        if self._redis is None:
            with self._lock:
                if self._redis is None:
                    import redis

                    self._redis = redis.Redis.from_url(self.redis_url)
        return self._redis

    def _no_wait_producers(self) -> Any:
        if not self.confirm_publish:
            return self.app.producer_pool
        if self._confirm_producers is None:
            with self._lock:
                if self._confirm_producers is None:
                    from kombu.pools import ProducerPool

                    connection = self.app.connection_for_write(
                        transport_options={"confirm_publish": True}
                    )
                    limit = self.app.conf.broker_pool_limit or 10
                    self._confirm_connection = connection.Pool(limit=limit)
                    self._confirm_producers = ProducerPool(self._confirm_connection, limit=limit)
        return self._confirm_producers

    # -- client side ---------------------------------------------------------------------
    def _publish(
        self,
        envelope: Envelope,
        response_key: str | None,
        producer: Any,
        expires: float | None,
    ) -> None:
        payload = legacy.build_payload(envelope, response_key)
        # Celery encodes the payload itself; the envelope's size stands in for it.
        self.check_size(envelope, envelope.encode())
        try:
            self.app.send_task(
                legacy.EVENT_TASK,
                args=[envelope.key, payload],
                kwargs={},
                task_id=envelope.id,
                producer=producer,
                router=self._route_no_wait if response_key is None else self._route_waiting,  # type: ignore[arg-type]
                ignore_result=True,
                add_to_parent=False,
                expires=expires,
                priority=legacy.WAITING_PRIORITY if response_key else legacy.NO_WAIT_PRIORITY,
            )
        except EncodeError as exc:
            raise EnvelopeError(
                f"message for {envelope.key!r} cannot be encoded as JSON: {exc} "
                "(data and headers must be JSON values: dict, list, str, int, float, bool, None)",
                "data",
            ) from exc
        except Exception as exc:
            raise PublishError(
                f"could not publish {envelope.method} {envelope.key!r} (id {envelope.id}) to "
                f"the Celery broker, exchange {self.exchange_name!r}: {exc!r}"
            ) from exc

    def request(self, envelope: Envelope, timeout: float) -> Response:
        """Publish ``envelope`` as a ``microservice.event`` task and wait for its Redis reply."""
        # Keep a reply address the client chose (a signature covers it), else pick one.
        response_key = envelope.reply_to or str(uuid.uuid4())
        envelope.reply_to = response_key
        # The task expires with the wait: a worker that gets to it later skips it.
        self._publish(envelope, response_key, None, timeout)
        raw = wait_reply(self._redis_client(), response_key, timeout, key=envelope.key)
        return legacy.decode_response(raw)

    def send(self, envelope: Envelope) -> None:
        """Publish ``envelope`` without a reply; returns once the broker confirmed it."""
        with self._no_wait_producers().acquire(block=True) as producer:
            self._publish(envelope, None, producer, None)

    def send_many(self, envelopes: Any) -> None:
        """Publish several envelopes on one producer; raise PublishError naming failures."""
        from zc_events import batch_error

        failed: list[tuple[Envelope, BaseException]] = []
        with self._no_wait_producers().acquire(block=True) as producer:
            for envelope in envelopes:
                try:
                    self._publish(envelope, None, producer, None)
                except Exception as exc:
                    failed.append((envelope, exc))
        if failed:
            raise batch_error(failed, len(envelopes))

    def publish_notification(self, kind: str, message: legacy.LegacyPublish) -> None:
        """Publish a legacy notification (:func:`zc_events.legacy.notification_message`) on
        ``NOTIFICATIONS_EXCHANGE`` (option ``notifications_exchange``) with routing key
        ``microservice.notification.<kind>``, as the old library did; implements
        :class:`zc_events.legacy.NotificationPublisher`.

        The message goes out as it is (no Celery serializer, no ``delivery_mode``, no headers:
        the old properties exactly). With ``confirm_publish`` (the default) it is published
        ``mandatory``, returns once the broker confirmed it, and raises NoRouteError when no
        queue is bound for ``kind``.
        """
        import amqp

        routing_key = legacy.notification_routing_key(kind)
        name = self.settings.notifications_exchange(
            self._notifications_exchange, who="celery backend"
        )
        self.check_size(Envelope(routing_key), message.body)
        returned: list[str] = []

        def on_return(exc: Any, exchange: str, routing_key: str, msg: Any) -> None:
            returned.append(str(exc))

        try:
            with self._no_wait_producers().acquire(block=True) as producer:
                channel = producer.channel
                producer.maybe_declare(Exchange(name, type="topic", durable=True))
                channel.events["basic_return"].add(on_return)
                try:
                    # mandatory only with confirms: without a wait for the confirm, a
                    # return would surface later, on an unrelated call on this channel
                    channel.basic_publish(
                        amqp.Message(message.body, **message.properties),
                        exchange=name,
                        routing_key=routing_key,
                        mandatory=self.confirm_publish,
                    )
                finally:
                    channel.events["basic_return"].discard(on_return)
        except Exception as exc:
            raise PublishError(
                f"could not publish the {kind} notification to the Celery broker, exchange "
                f"{name!r}: {exc!r}"
            ) from exc
        if returned:
            raise NoRouteError(
                f"no queue is bound to the notifications exchange {name!r} with "
                f"{routing_key!r}: no service consumes {kind} notifications (the broker "
                f"returned the message: {returned[0]})",
                routing_key,
            )

    # -- server side ---------------------------------------------------------------------
    def serve(self, dispatcher: Dispatcher | None = None) -> None:
        """Run a Celery worker for the service's events queue in this process until stopped.

        (``celery -A proj worker`` with an app set up by :func:`zc_events_celery.install` is
        the usual way to run a worker; this is what ``zc-events worker --backend celery`` does.)
        """
        inst = installation(self.app)
        if inst is None or dispatcher is not None:
            install(
                self.app,
                queue=self.queue_name,
                events_exchange=self.exchange_name,
                redis_url=self.redis_url,
                dispatcher=dispatcher,
                settings=self.settings,
                notifications=self.notifications,
                notifications_exchange=self._notifications_exchange,
            )
            inst = installation(self.app)
        assert inst is not None
        if inst.queue.name is None:  # pragma: no cover
            raise ConfigurationError("the celery backend needs SERVICE_NAME to serve")
        worker = self.app.Worker(
            queues=[inst.queue.name],
            pool=self.pool,
            concurrency=self.concurrency,
            without_mingle=True,
            without_gossip=True,
            without_heartbeat=True,
            loglevel="INFO",
            quiet=True,
        )
        with self._lock:
            if self.stopping.is_set():
                return
            self._worker = worker
        log.info("celery worker serving queue %r of exchange %r", inst.queue.name, inst.exchange)
        worker.start()

    def stop(self) -> None:
        """Ask :meth:`serve` to stop: a warm shutdown that finishes the tasks in progress."""
        super().stop()
        with self._lock:
            running = self._worker is not None
        if running:
            from celery.worker import state

            state.should_stop = 0  # type: ignore[assignment]  # EX_OK: a warm shutdown

    def close(self) -> None:
        """Release the Redis client and the confirm-mode connection (and the app if ours)."""
        with self._lock:
            redis_client, self._redis = self._redis, None
            connections, self._confirm_connection = self._confirm_connection, None
            producers, self._confirm_producers = self._confirm_producers, None
        if redis_client is not None:
            redis_client.close()
        if producers is not None:
            producers.force_close_all()
        if connections is not None:
            connections.force_close_all()
        if self._own_app:
            self.app.close()
