"""``install(app)``: make a Celery app a zc-events service with one call."""

from __future__ import annotations

import importlib
import logging
import os
import threading
import uuid
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kombu import Exchange, Queue

from zc_events import ConfigurationError, Dispatcher, Settings, get_settings, legacy
from zc_events.serving import (
    FAILURES_HEADER,
    LegacyServer,
    Outcome,
    delivery_decision,
    too_many_deliveries,
)

if TYPE_CHECKING:
    from celery import Celery, Task

__all__ = [
    "DEFAULTS",
    "EventsQueue",
    "Installation",
    "events_queue",
    "install",
    "installation",
]

log = logging.getLogger("zc_events_celery")

#: The service's events queue is ``<SERVICE_NAME>-events``, as in zc_events 0.4.
QUEUE_SUFFIX = "-events"
#: The sane defaults ``install()`` adds; any value the app configures itself wins.
DEFAULTS: dict[str, Any] = {
    "task_serializer": "json",
    "result_serializer": "json",
    "accept_content": ["json"],
    "result_accept_content": ["json"],
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "worker_cancel_long_running_tasks_on_connection_loss": True,
    "broker_connection_retry_on_startup": True,
}


class EventsQueue(Queue):
    """The events queue: bound to the fanout events exchange and, for each
    ``(exchange, routing_key)`` in ``notification_bindings``, to the topic exchange of legacy
    notifications.

    (kombu's own ``bindings`` would drop the main exchange, and Celery would then bind the queue
    to the app's default exchange as well; so the extra bindings are made here.)
    """

    attrs = (*Queue.attrs, ("notification_bindings", tuple))
    notification_bindings: tuple[tuple[str, str], ...] = ()

    def _create_bindings(self, nowait: bool = False, channel: Any = None) -> None:
        super()._create_bindings(nowait=nowait, channel=channel)
        channel = channel or self.channel
        for exchange, routing_key in self.notification_bindings or ():
            Exchange(exchange, type="topic", durable=True).declare(channel=channel)
            channel.queue_bind(queue=self.name, exchange=exchange, routing_key=routing_key)


def events_queue(
    name: str,
    exchange: str,
    *,
    notifications: Iterable[str] = (),
    notifications_exchange: str | None = None,
) -> Queue:
    """The service's durable priority queue bound to the fanout ``exchange``.

    Declared with exactly the arguments zc_events 0.4 used (``x-max-priority: 10``), so old and
    new processes can both declare it. With ``notifications`` (kinds such as ``"email"``) it is
    also bound to the topic exchange ``notifications_exchange`` with
    ``microservice.notification.<kind>``.
    """
    kinds = legacy.notification_kinds(tuple(notifications), who="celery install()")
    if kinds and not notifications_exchange:
        raise ConfigurationError(
            "consuming legacy notifications needs NOTIFICATIONS_EXCHANGE "
            "(or notifications_exchange=)"
        )
    return EventsQueue(
        name,
        Exchange(exchange, type="fanout", durable=True),
        routing_key="",
        durable=True,
        queue_arguments={"x-max-priority": 10},
        notification_bindings=tuple(
            (notifications_exchange, legacy.notification_routing_key(kind)) for kind in kinds
        ),
    )


def resolve_names(
    settings: Settings,
    *,
    service_name: str | None = None,
    exchange: str | None = None,
    queue: str | None = None,
) -> tuple[str, str | None]:
    """``(exchange, queue)`` from explicit values, then settings; queue None without a service."""
    exchange = settings.events_exchange(exchange, who="celery backend")
    if queue is None:
        name = service_name or settings.get("SERVICE_NAME", None)
        if name is not None:
            if not isinstance(name, str) or not name:
                raise ConfigurationError(f"setting SERVICE_NAME must be a string, got {name!r}")
            queue = name + QUEUE_SUFFIX
    return exchange, queue


@dataclass(eq=False)
class Installation:
    """What ``install()`` set up on one app: names, the dispatcher and the Redis reply client."""

    app: Celery
    queue: Queue
    settings: Settings
    redis_url: str | None = None
    modules: list[str] = field(default_factory=list)
    dispatcher: Dispatcher | None = None
    task: Task[Any, Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _redis: Any = field(default=None, repr=False)
    _server: LegacyServer | None = field(default=None, repr=False)
    _redis_pid: int = field(default=0, repr=False)
    _imported: bool = field(default=False, repr=False)
    _worker_hook: bool = field(default=False, repr=False)
    #: The legacy notification kinds the service consumes (``install(notifications=)``).
    notifications: tuple[str, ...] = ()
    #: Their topic exchange (``NOTIFICATIONS_EXCHANGE`` or ``install(notifications_exchange=)``).
    notifications_exchange: str | None = None
    notification_task: Task[Any, Any] | None = None

    @property
    def exchange(self) -> str:
        """Name of the fanout events exchange."""
        name: str = self.queue.exchange.name
        return name

    def import_modules(self) -> None:
        """Import the handler modules given to ``install()`` (once)."""
        if self._imported:
            return
        for name in self.modules:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                raise ConfigurationError(f"cannot import handler module {name!r}: {exc}") from exc
        self._imported = True

    def get_dispatcher(self) -> Dispatcher:
        """The dispatcher the task uses: the one given, or process-wide + settings handlers."""
        if self.dispatcher is None:
            with self._lock:
                if self.dispatcher is None:
                    self.import_modules()
                    self.dispatcher = Dispatcher.from_settings(self.settings, "celery")
        return self.dispatcher

    def server(self) -> LegacyServer:
        """The legacy server the task runs (built on first use, after fork)."""
        if self._server is None:
            self._server = LegacyServer(self.get_dispatcher(), self.redis, settings=self.settings)
        return self._server

    @property
    def dead_queue(self) -> str:
        """Where messages that cannot be served go: ``<SERVICE_NAME>.dead``, as with RabbitMQ."""
        name: str = self.queue.name
        return (name[: -len(QUEUE_SUFFIX)] if name.endswith(QUEUE_SUFFIX) else name) + ".dead"

    def redis(self) -> Any:
        """A Redis client for replies, made after fork (one per process)."""
        pid = os.getpid()
        if self._redis is None or self._redis_pid != pid:
            with self._lock:
                if self._redis is None or self._redis_pid != pid:
                    import redis

                    url = self.redis_url or self.settings.redis_url({})
                    self._redis = redis.Redis.from_url(url)
                    self._redis_pid = pid
        return self._redis

    def run(
        self,
        request: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        task: str = legacy.EVENT_TASK,
    ) -> None:
        """The body of the ``microservice.event`` task (and of ``microservice.notification``,
        ``task``); ``request`` is the task's request.

        Serves the call with :class:`zc_events.serving.LegacyServer`. A message that cannot be
        served, or one delivered more than ``ZC_EVENTS_MAX_DELIVERIES`` times, is copied to
        :attr:`dead_queue` with the error and rejected without requeue
        (:class:`celery.exceptions.Reject`).
        """
        task_id = getattr(request, "id", None)
        delivery = getattr(request, "delivery_info", None) or {}
        headers = getattr(request, "headers", None)
        max_deliveries = self.settings.max_deliveries
        decision, failures = delivery_decision(
            headers, bool(delivery.get("redelivered")), max_deliveries
        )
        if decision == "requeue":
            log.warning(
                "%s message %s was delivered before and never acknowledged (a worker died "
                "handling it?): putting it back at the end of %r, %d of %d deliveries used "
                "(ZC_EVENTS_MAX_DELIVERIES)",
                task,
                task_id,
                self.queue.name,
                failures,
                max_deliveries,
            )
            self._publish_copy(
                self.queue.name,
                args,
                kwargs,
                task_id,
                {**(headers or {}), FAILURES_HEADER: failures},
                task,
            )
            return
        if decision == "dead_letter":
            outcome = too_many_deliveries(failures, max_deliveries)
        else:
            outcome = self.server().serve_task(args, kwargs, task_id, task)
            failures += 1
        if not outcome.ack:
            self.dead_letter(outcome, args, kwargs, task_id, headers, failures, task)

    def dead_letter(
        self,
        outcome: Outcome,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        task_id: str | None,
        headers: dict[str, Any] | None,
        attempts: int,
        task: str = legacy.EVENT_TASK,
    ) -> None:
        """Copy the message to :attr:`dead_queue` with the error, then reject it (no requeue)."""
        from celery.exceptions import Reject

        dead_headers = outcome.dead_letter_copy(
            headers,
            queue=self.queue.name,
            dead_queue=self.dead_queue,
            attempts=attempts,
            what=f"{task} message {task_id}",
            logger=log,
        )
        self._publish_copy(self.dead_queue, args, kwargs, task_id, dead_headers, task)
        raise Reject(outcome.dead_letter, requeue=False)

    def _publish_copy(
        self,
        queue: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        task_id: str | None,
        headers: dict[str, Any],
        task: str = legacy.EVENT_TASK,
    ) -> None:
        """Publish the task message again, straight to ``queue`` (persistent, declared)."""
        task_id = task_id or str(uuid.uuid4())
        try:
            message = legacy.task_message(list(args), dict(kwargs or {}), task_id, task=task)
            body = message.body
        except TypeError:  # not JSON (cannot happen for what Celery decoded): keep a repr
            message = legacy.task_message([repr(args)[:10000]], {}, task_id, task=task)
            body = message.body
        properties = dict(message.properties)
        task_headers = {**properties.pop("headers"), **headers}
        with self.app.producer_or_acquire() as producer:
            producer.publish(
                body,
                exchange="",
                routing_key=queue,
                headers=task_headers,
                delivery_mode=2,
                declare=[Queue(queue, durable=True)] if queue != self.queue.name else [],
                retry=True,
                **properties,
            )


#: Seconds between wake-ups of the worker's event loop (see :func:`_prompt_shutdown_step`).
WAKE_INTERVAL = 1.0


def _prompt_shutdown_step() -> type:
    """A consumer bootstep that wakes the worker's event loop every second.

    Celery 5.5+ answers SIGTERM by setting a flag that its event loop checks when it wakes;
    with nothing scheduled the loop sleeps up to 10 s, so a warm shutdown took that long.
    """
    from celery import bootsteps

    def _noop() -> None:
        return None

    class PromptShutdown(bootsteps.StartStopStep):
        label = "zc-events prompt shutdown"

        def __init__(self, parent: Any, **kwargs: Any) -> None:
            super().__init__(parent, **kwargs)
            self.tref: Any = None

        def start(self, parent: Any) -> None:
            hub = getattr(parent, "hub", None)
            if hub is not None and self.tref is None:
                self.tref = hub.call_repeatedly(WAKE_INTERVAL, _noop)

        def stop(self, parent: Any) -> None:
            if self.tref is not None:
                self.tref.cancel()
                self.tref = None

        shutdown = stop

    return PromptShutdown


_INSTALLED: weakref.WeakKeyDictionary[Any, Installation] = weakref.WeakKeyDictionary()


def installation(app: Celery) -> Installation | None:
    """What :func:`install` set up on ``app``, or None."""
    return _INSTALLED.get(app)


def _merge_queues_and_routes(app: Celery, queue: Queue) -> None:
    conf = app.conf
    queues = list(conf.task_queues or ())
    if not queues:
        # Keep the default queue: the app's other tasks still need a consumer.
        default = conf.task_default_queue
        queues.append(
            Queue(
                default,
                Exchange(
                    conf.task_default_exchange or default, type=conf.task_default_exchange_type
                ),
                routing_key=conf.task_default_routing_key or default,
            )
        )
    queues = [q for q in queues if getattr(q, "name", None) != queue.name]
    conf.task_queues = [*queues, queue]
    route = {legacy.EVENT_TASK: {"queue": queue.name}}
    routes = conf.task_routes
    if routes is None:
        conf.task_routes = (route,)
    elif isinstance(routes, list | tuple):
        conf.task_routes = (route, *[r for r in routes if r != route])
    else:
        conf.task_routes = (route, routes)


def install(
    app: Celery,
    *,
    service_name: str | None = None,
    events_exchange: str | None = None,
    queue: str | None = None,
    redis_url: str | None = None,
    modules: Iterable[str] = (),
    dispatcher: Dispatcher | None = None,
    settings: Settings | None = None,
    task_options: Mapping[str, Any] | None = None,
    notifications: Iterable[str] = (),
    notifications_exchange: str | None = None,
) -> Task[Any, Any]:
    """Make ``app`` a zc-events service; returns the registered ``microservice.event`` task.

    - declares the fanout events exchange (``events_exchange``, else ``EVENTS_EXCHANGE``;
      required) and the service's priority queue ``<SERVICE_NAME>-events`` (or ``queue``),
      added to ``task_queues`` beside the default queue;
    - routes ``microservice.event`` to it;
    - registers the ``microservice.event`` task, which dispatches to zc-events handlers (the
      ``@zc_events.handler`` registry, ``ZC_EVENTS_HANDLERS``/``JOB_MAPPING``, the handlers of
      ``modules``, or ``dispatcher``), answers through Redis (``redis_url``, else
      ``EVENTS_REDIS_URL``) and also accepts the old protocol-1 events;
    - with ``notifications`` (legacy notification kinds, e.g. ``["email"]``): binds the queue
      to the topic exchange ``notifications_exchange`` (else ``NOTIFICATIONS_EXCHANGE``;
      required then) with ``microservice.notification.<kind>``, and registers the
      ``microservice.notification`` task, which hands each notification to the handler named
      by its event type (``send_email``...) with the keyword arguments as ``request.data``;
    - adds :data:`DEFAULTS` (JSON only, acks late, reject on worker loss, prefetch 1) as
      defaults: anything the app configures itself, before or after, wins.

    Calling it again updates the installation. Raises ConfigurationError when no service name
    is set (``service_name``, ``queue`` or ``SERVICE_NAME``).
    """
    settings = settings if settings is not None else get_settings()
    exchange_name, queue_name = resolve_names(
        settings, service_name=service_name, exchange=events_exchange, queue=queue
    )
    if queue_name is None:
        raise ConfigurationError(
            "zc_events_celery.install() needs the service's name to name its events queue: "
            "pass service_name= (or queue=), or set SERVICE_NAME"
        )
    kinds = legacy.notification_kinds(tuple(notifications), who="celery install()")
    topic = (
        settings.notifications_exchange(notifications_exchange, who="celery install()")
        if kinds
        else None
    )
    events = events_queue(
        queue_name, exchange_name, notifications=kinds, notifications_exchange=topic
    )
    inst = _INSTALLED.get(app)
    if inst is None:
        inst = Installation(app, events, settings)
        _INSTALLED[app] = inst
    else:
        inst.queue, inst.settings, inst._imported = events, settings, False
        inst._server = None
    inst.redis_url = redis_url
    inst.notifications, inst.notifications_exchange = kinds, topic
    inst.modules = list(modules)
    inst.dispatcher = dispatcher
    inst._server = None

    app.add_defaults(dict(DEFAULTS))  # type: ignore[arg-type]  # Celery takes a mapping too
    if app.configured:  # type: ignore[attr-defined]  # missing from celery-types
        _merge_queues_and_routes(app, events)
    else:

        def on_configured(sender: Any = None, **kwargs: Any) -> None:
            if sender is app:
                _merge_queues_and_routes(app, inst.queue)

        app.on_after_configure.connect(on_configured, weak=False)

    if not inst._worker_hook:
        app.steps["consumer"].add(_prompt_shutdown_step())
        from celery.signals import worker_init, worker_ready

        def on_worker_init(sender: Any = None, **kwargs: Any) -> None:
            # Fail at start-up, not on the first message, when a handler module is missing.
            if getattr(sender, "app", None) is app:
                inst.get_dispatcher()

        def on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
            # The line every zc-events worker logs once it consumes (tests and probes wait for it).
            if getattr(sender, "app", None) is app:
                log.info("consuming %s (events exchange %r)", inst.queue.name, inst.exchange)

        worker_init.connect(on_worker_init, weak=False)
        worker_ready.connect(on_worker_ready, weak=False)
        inst._worker_hook = True

    if inst.task is None:
        options: dict[str, Any] = {
            "name": legacy.EVENT_TASK,
            "bind": True,
            "ignore_result": True,
            "shared": False,
            "Strategy": "zc_events_celery._install:checked_strategy",
        }
        options.update(task_options or {})

        def microservice_event(self: Task[Any, Any], *args: Any, **kwargs: Any) -> None:
            """Dispatch a zc-events call (or a zc_events 0.4 event) to this service's handlers."""
            inst.run(self.request, args, kwargs)

        inst.task = app.task(**options)(microservice_event)
    if kinds and inst.notification_task is None:
        options = {
            "name": legacy.NOTIFICATION_TASK,
            "bind": True,
            "ignore_result": True,
            "shared": False,
        }
        options.update(task_options or {})

        def microservice_notification(self: Task[Any, Any], *args: Any, **kwargs: Any) -> None:
            """Hand a zc_events 0.4 notification to the handler named by its event type."""
            inst.run(self.request, args, kwargs, legacy.NOTIFICATION_TASK)

        inst.notification_task = app.task(**options)(microservice_notification)
    return inst.task


def _malformed(message: Any, body: Any) -> str | None:
    """Why Celery's own task-message handling would fail on this message (None: it will not)."""
    if body is None:  # protocol 2: [args, kwargs, embed], decoded here (kombu caches it)
        payload = message.payload
        if isinstance(payload, dict) and "args" in payload:  # Celery's "hybrid" form
            args, kwargs = payload.get("args"), payload.get("kwargs", {})
        elif isinstance(payload, list | tuple) and len(payload) == 3:
            args, kwargs, embed = payload
            if embed is not None and not isinstance(embed, dict):
                return f"protocol-2 embed must be an object, got {type(embed).__name__}"
        else:
            return "protocol-2 body must be [args, kwargs, embed]"
    else:  # protocol 1: the consumer decoded a dict with a 'task' key
        args, kwargs = body.get("args", ()), body.get("kwargs", {})
    if not isinstance(args, list | tuple):
        return f"task args must be a list, got {type(args).__name__}"
    if kwargs is not None and not isinstance(kwargs, dict):
        return f"task kwargs must be an object, got {type(kwargs).__name__}"
    return None


def checked_strategy(task: Any, app: Any, consumer: Any, **kwargs: Any) -> Any:
    """Celery's default strategy for ``microservice.event``, after a shape check.

    Celery's own message handling raises ValueError/TypeError, which stop the worker
    ("Unrecoverable error"), on a task message whose body is not ``[args, kwargs, embed]``.
    Such a message is refused here with InvalidTaskError instead: Celery rejects it without
    requeue (to the queue's dead-letter exchange, if any) and goes on consuming.
    """
    from celery.exceptions import InvalidTaskError
    from celery.worker.strategy import default

    handler = default(task, app, consumer, **kwargs)

    def task_message_handler(message: Any, body: Any, *args: Any, **options: Any) -> Any:
        why = _malformed(message, body)
        if why is not None:
            raise InvalidTaskError(f"malformed {legacy.EVENT_TASK!r} message: {why}")
        return handler(message, body, *args, **options)

    return task_message_handler
