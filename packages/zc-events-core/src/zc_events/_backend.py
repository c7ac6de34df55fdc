"""The transport contract: one small abstract class (docs/writing-a-transport.md)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ._envelope import Envelope
from ._exceptions import ConfigurationError, EnvelopeError, NoRouteError, PublishError
from ._handlers import Dispatcher
from ._registry import BACKENDS, load
from ._response import Response
from ._settings import Settings, global_settings

if TYPE_CHECKING:
    from ._async_backend import AsyncBackend

__all__ = [
    "Backend",
    "BaseBackend",
    "DeadLetter",
    "check_no_options",
    "create_backend",
    "resolve_backend",
]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message a worker could not handle, as :meth:`Backend.dead_letters` lists it.

    ``id`` is the message id (what :meth:`Backend.replay_dead_letters` takes), ``key`` and
    ``method`` are None when the message is not a readable envelope; ``reason`` says why it was
    dead-lettered; ``first_seen`` is when (ISO 8601 UTC, or None if the transport does not
    know); ``size`` is the body's length in bytes; ``queue`` is where it was taken from.
    """

    id: str
    key: str | None
    method: str | None
    reason: str
    first_seen: str | None
    size: int
    queue: str


def check_no_options(name: str, options: dict[str, Any]) -> None:
    """Raise ConfigurationError naming ``options`` a backend did not take."""
    if options:
        raise ConfigurationError(
            f"backend {name!r} got unknown option(s): {', '.join(sorted(options))}"
        )


class BaseBackend:
    """What the sync and async transport contracts share: ``name``, ``unknown_key_error``,
    settings, the unknown-option check, the message size limit and the default dispatcher."""

    #: The entry-point name.
    name: ClassVar[str] = ""
    #: What a call to a key nobody handles raises (the legacy fanout cannot know: RequestTimeout).
    unknown_key_error: ClassVar[type[Exception]] = NoRouteError

    def __init__(self, *, settings: Settings | None = None, **options: Any) -> None:
        self.settings = settings if settings is not None else global_settings()
        check_no_options(self.name or type(self).__name__, options)
        #: Largest encoded message :meth:`check_size` lets through
        #: (``ZC_EVENTS_MAX_MESSAGE_BYTES``).
        self.max_message_bytes = self.settings.max_message_bytes

    def check_size(self, envelope: Envelope, body: bytes) -> bytes:
        """Return ``body`` (the encoded ``envelope``), or raise :class:`EnvelopeError` when it is
        larger than ``ZC_EVENTS_MAX_MESSAGE_BYTES``. Backends call it before publishing."""
        if len(body) > self.max_message_bytes:
            raise EnvelopeError(
                f"message for {envelope.key!r} is {len(body)} bytes, over "
                f"ZC_EVENTS_MAX_MESSAGE_BYTES ({self.max_message_bytes}): send large bodies "
                "through S3 with the s3_claim_check middleware (pip install zc-events-aws), or "
                "raise the limit on every service",
                "data",
            )
        return body

    def prepare_request(self, envelope: Envelope) -> None:
        """Called by the client before middleware runs on a waiting request: set what the
        transport chooses itself (``reply_to``), so that signatures cover it. The client has set
        ``reply_to`` to a fresh uuid; a transport that needs another address sets it here, and
        :meth:`request` must then keep ``envelope.reply_to`` as it is."""

    def default_dispatcher(self) -> Dispatcher:
        """A dispatcher over the process-wide handlers, settings handlers and server middleware
        (bound to this backend's name), answering the ``SERVICE_NAME`` health check key."""
        return default_dispatcher(self.settings, self.name)


class Backend(BaseBackend, ABC):
    """A transport. Subclass it, publish it in the ``zc_events.backends`` entry-point group and
    pass :class:`zc_events.testing.conformance.BackendConformance`.

    Client side: :meth:`request` (publish, wait for the reply) and :meth:`send` (publish once the
    transport has taken the message). Server side: :meth:`serve` until :meth:`stop`.
    Instances must be safe to share between threads. Its asyncio face: :meth:`async_backend_class`.
    """

    def __init__(self, *, settings: Settings | None = None, **options: Any) -> None:
        super().__init__(settings=settings, **options)
        self._stopping = threading.Event()

    @classmethod
    def async_backend_class(cls) -> type[AsyncBackend] | None:
        """The native :class:`AsyncBackend` of this transport, or None (the default).

        :func:`create_async_backend` uses it when there is one, and otherwise runs this sync
        backend on threads (:class:`ThreadedAsyncBackend`). Import the asyncio driver inside
        the override, so that sync users never import it.
        """
        return None

    @abstractmethod
    def request(self, envelope: Envelope, timeout: float) -> Response:
        """Publish ``envelope`` and return the reply; raise RequestTimeout after ``timeout`` s."""

    @abstractmethod
    def send(self, envelope: Envelope) -> None:
        """Publish ``envelope`` without waiting for a reply; return once the transport has it."""

    def send_many(self, envelopes: Sequence[Envelope]) -> None:
        """Publish several envelopes; raise PublishError naming any the transport did not take."""
        failed: list[tuple[Envelope, BaseException]] = []
        for envelope in envelopes:
            try:
                self.send(envelope)
            except Exception as exc:
                failed.append((envelope, exc))
        if failed:
            raise batch_error(failed, len(envelopes))

    def serve(self, dispatcher: Dispatcher | None = None) -> None:
        """Consume and dispatch until :meth:`stop` is called, then finish in-flight messages."""
        raise ConfigurationError(f"backend {self.name!r} has no worker")

    def is_consuming(self) -> bool:
        """True while :meth:`serve` is taking messages from the transport (``zc-events worker
        --health-file`` touches its file only then). The default says True until :meth:`stop`;
        a transport overrides it to report its consumers' state (connected, not wedged)."""
        return not self._stopping.is_set()

    def dead_letters(self, service: str | None = None) -> list[DeadLetter]:
        """The messages in ``service``'s dead-letter queue (default ``SERVICE_NAME``), oldest
        first, left in place. Transports without dead-letter tools raise ConfigurationError."""
        raise ConfigurationError(self._no_dead_letters())

    def replay_dead_letters(
        self,
        service: str | None = None,
        ids: Iterable[str] | None = None,
        *,
        prepare: Callable[[Envelope], Envelope] | None = None,
    ) -> list[str]:
        """Publish the dead letters ``ids`` (all with None) of ``service`` to their key again,
        removing each only once the transport confirmed its republish; return the ids replayed.

        A replayed envelope is a ``*_no_wait`` call (no ``reply_to``, no deadline) passed
        through ``prepare`` first (``zc-events dead replay`` passes the client middleware's
        ``outgoing_request`` hooks, so a signature is made afresh). Transports without
        dead-letter tools raise ConfigurationError."""
        raise ConfigurationError(self._no_dead_letters())

    def _no_dead_letters(self) -> str:
        return (
            f"the {self.name or type(self).__name__!r} backend keeps no dead letters it can list "
            "or replay (the rabbitmq, rabbitmq_legacy and redis backends do)"
        )

    def stop(self) -> None:
        """Ask :meth:`serve` to stop consuming (safe from signal handlers and other threads)."""
        self._stopping.set()

    @property
    def stopping(self) -> threading.Event:
        """Set by :meth:`stop`: :meth:`serve` consumes until it is set, then drains and returns."""
        return self._stopping

    def close(self) -> None:
        """Release connections and threads."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def default_dispatcher(settings: Settings, backend: str = "") -> Dispatcher:
    """A dispatcher over the process-wide handlers, ``ZC_EVENTS_HANDLERS`` and the server
    middleware of ``settings``, told the ``backend`` name (:meth:`Dispatcher.from_settings`)."""
    return Dispatcher.from_settings(settings, backend)


def batch_error(failed: list[tuple[Envelope, BaseException]], total: int) -> PublishError:
    """A PublishError naming the messages of a batch the transport did not take."""
    listed = "; ".join(f"{env.key!r} id {env.id}: {exc}" for env, exc in failed[:10])
    more = f"; and {len(failed) - 10} more" if len(failed) > 10 else ""
    error = PublishError(f"{len(failed)} of {total} messages were not published: {listed}{more}")
    error.failed = [env for env, _ in failed]  # type: ignore[attr-defined]
    return error


def resolve_backend(
    name: str | None, settings: Settings, options: dict[str, Any]
) -> tuple[type[Backend], dict[str, Any]]:
    """The Backend class named ``name`` (default ``ZC_EVENTS_BACKEND``) and its options, with
    ``ZC_EVENTS_BACKEND_OPTIONS`` layered under ``options`` when they apply to it."""
    configured = settings.backend
    # Options apply to the configured backend, or to whichever backend is named when none is.
    backend_set = settings.lookup("ZC_EVENTS_BACKEND")[1] != ""
    if name is None:
        name = configured
    if name == configured or not backend_set:
        options = {**settings.backend_options, **options}
    cls = load(name, BACKENDS)
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigurationError(f"backend {name!r} resolved to {cls!r}, not a zc_events.Backend")
    return cls, options


def create_backend(
    name: str | None = None, settings: Settings | None = None, **options: Any
) -> Backend:
    """Build the backend ``name`` (default: the ``ZC_EVENTS_BACKEND`` setting).

    When ``name`` is the configured backend (or ``ZC_EVENTS_BACKEND`` is not set),
    ``ZC_EVENTS_BACKEND_OPTIONS`` are applied first and ``options`` override them.
    """
    settings = settings if settings is not None else global_settings()
    cls, options = resolve_backend(name, settings, options)
    return cls(settings=settings, **options)
