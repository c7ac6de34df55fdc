"""``install(app)``: make a Celery app a zc-events service with one call."""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kombu import Exchange, Queue

from zc_events import ConfigurationError, Dispatcher, EnvelopeError, Settings, get_settings, legacy

if TYPE_CHECKING:
    from celery import Celery, Task

__all__ = [
    "DEFAULTS",
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
#: Attempts (and pauses between them) to push a reply when Redis fails.
_PUSH_PAUSES = (0.1, 0.5, 1.0)


def events_queue(name: str, exchange: str) -> Queue:
    """The service's durable priority queue bound to the fanout ``exchange``.

    Declared with exactly the arguments zc_events 0.4 used (``x-max-priority: 10``), so old and
    new processes can both declare it.
    """
    return Queue(
        name,
        Exchange(exchange, type="fanout", durable=True),
        routing_key="",
        durable=True,
        queue_arguments={"x-max-priority": 10},
    )


def resolve_names(
    settings: Settings,
    *,
    service_name: str | None = None,
    exchange: str | None = None,
    queue: str | None = None,
) -> tuple[str, str | None]:
    """``(exchange, queue)`` from explicit values, then settings; queue None without a service."""
    exchange = exchange or settings.get("EVENTS_EXCHANGE", None)
    if exchange is None:
        # No default: a name that differs from the fleet's exchange would drop every message.
        raise ConfigurationError(
            "the events exchange is not set: set EVENTS_EXCHANGE (the fanout exchange the fleet "
            "shares, e.g. the old library's value) or pass events_exchange="
        )
    if not isinstance(exchange, str):
        raise ConfigurationError(f"setting EVENTS_EXCHANGE must be a string, got {exchange!r}")
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
    task: Task | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _redis: Any = field(default=None, repr=False)
    _redis_pid: int = field(default=0, repr=False)
    _imported: bool = field(default=False, repr=False)
    _worker_hook: bool = field(default=False, repr=False)

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
                    from ._backend import CeleryBackend

                    backend = CeleryBackend(app=self.app, settings=self.settings)
                    self.dispatcher = backend.default_dispatcher()
        return self.dispatcher

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

    def run(self, task_id: str | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """The body of the ``microservice.event`` task: dispatch, then push the reply if due.

        Raises :class:`celery.exceptions.Reject` (not requeued) for a malformed message.
        """
        try:
            parsed = legacy.parse_task(list(args), kwargs, task_id=task_id)
        except EnvelopeError as exc:
            from celery.exceptions import Reject

            log.error(
                "rejecting malformed %s message %s: %s (args=%.500r kwargs=%.500r)",
                legacy.EVENT_TASK,
                task_id,
                exc,
                args,
                kwargs,
            )
            raise Reject(str(exc), requeue=False) from exc
        envelope = parsed.envelope
        dispatcher = self.get_dispatcher()
        if not dispatcher.handles(envelope.key):
            # The events exchange is a fanout: every service sees every message, and only the
            # one that handles the key answers (as zc_events 0.4 did).
            log.debug(
                "ignoring %s %r (id %s): not handled here",
                envelope.method,
                envelope.key,
                envelope.id,
            )
            return
        response = dispatcher.respond(envelope)
        if response is None or parsed.response_key is None:
            return
        self.push(
            parsed.response_key, legacy.encode_response(response, key=envelope.key), envelope.key
        )

    def push(self, response_key: str, body: bytes, key: str) -> None:
        """Push a reply, retrying briefly when Redis fails; log if it cannot be delivered."""
        for attempt, pause in enumerate((*_PUSH_PAUSES, None)):
            try:
                legacy.push_reply(self.redis(), response_key, body)
                return
            except Exception as exc:
                if pause is None:
                    log.error(
                        "could not push the reply to %r to Redis after %d attempts: %s",
                        key,
                        attempt + 1,
                        exc,
                    )
                    raise
                log.warning("pushing the reply to %r failed (%s); retrying", key, exc)
                time.sleep(pause)


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

    class PromptShutdown(bootsteps.StartStopStep):  # type: ignore[misc]
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
) -> Task:
    """Make ``app`` a zc-events service; returns the registered ``microservice.event`` task.

    - declares the fanout events exchange (``events_exchange``, else ``EVENTS_EXCHANGE``;
      required) and the service's priority queue ``<SERVICE_NAME>-events`` (or ``queue``),
      added to ``task_queues`` beside the default queue;
    - routes ``microservice.event`` to it;
    - registers the ``microservice.event`` task, which dispatches to zc-events handlers (the
      ``@zc_events.handler`` registry, ``ZC_EVENTS_HANDLERS``/``JOB_MAPPING``, the handlers of
      ``modules``, or ``dispatcher``), answers through Redis (``redis_url``, else
      ``EVENTS_REDIS_URL``) and also accepts the old protocol-1 events;
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
    events = events_queue(queue_name, exchange_name)
    inst = _INSTALLED.get(app)
    if inst is None:
        inst = Installation(app, events, settings)
        _INSTALLED[app] = inst
    else:
        inst.queue, inst.settings, inst._imported = events, settings, False
    inst.redis_url = redis_url
    inst.modules = list(modules)
    inst.dispatcher = dispatcher

    app.add_defaults(dict(DEFAULTS))
    if app.configured:
        _merge_queues_and_routes(app, events)
    else:

        def on_configured(sender: Any = None, **kwargs: Any) -> None:
            if sender is app:
                _merge_queues_and_routes(app, inst.queue)

        app.on_after_configure.connect(on_configured, weak=False)

    if not inst._worker_hook:
        app.steps["consumer"].add(_prompt_shutdown_step())
        from celery.signals import worker_init

        def on_worker_init(sender: Any = None, **kwargs: Any) -> None:
            # Fail at start-up, not on the first message, when a handler module is missing.
            if getattr(sender, "app", None) is app:
                inst.get_dispatcher()

        worker_init.connect(on_worker_init, weak=False)
        inst._worker_hook = True

    if inst.task is None:
        options = {"name": legacy.EVENT_TASK, "bind": True, "ignore_result": True, "shared": False}
        options.update(task_options or {})

        def microservice_event(self: Task, *args: Any, **kwargs: Any) -> None:
            """Dispatch a zc-events call (or a zc_events 0.4 event) to this service's handlers."""
            inst.run(self.request.id, args, kwargs)

        inst.task = app.task(**options)(microservice_event)
    return inst.task
