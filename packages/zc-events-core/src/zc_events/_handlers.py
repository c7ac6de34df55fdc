"""Handler registration and dispatch (the server half of a call: docs/architecture.md)."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._aio import drive, run_coroutine
from ._context import CAUSED_BY_HEADER, serving
from ._envelope import Envelope, validate_key
from ._exceptions import ConfigurationError, EnvelopeError, SignatureError
from ._middleware import call_hook, call_hook_async
from ._registry import import_string
from ._request import Request
from ._response import Response, encode_reply
from ._settings import Settings, global_settings

if TYPE_CHECKING:
    from ._middleware import Middleware
    from ._settings import Settings

__all__ = ["HEALTH_PREFIX", "Dispatcher", "HandlerRegistry", "handler", "handlers", "health_key"]

log = logging.getLogger("zc_events")

Handler = Callable[[Request], Any]
F = TypeVar("F", bound=Callable[..., Any])
Adapter = Callable[[Any], "Handler | None"]


class HandlerRegistry:
    """Maps keys to handlers. Values may be callables or dotted paths (imported on first use).

    Adapters (see :meth:`add_adapter`) turn other objects, such as DRF views, into handlers.
    """

    adapters: list[Adapter] = []

    def __init__(self, mapping: Mapping[str, Any] | None = None) -> None:
        self._handlers: dict[str, Any] = {}
        self._lock = threading.Lock()
        if mapping:
            self.update(mapping)

    @classmethod
    def add_adapter(cls, adapter: Adapter) -> None:
        """Register ``adapter(obj) -> handler | None``, tried on objects that are not functions."""
        if adapter not in cls.adapters:
            cls.adapters.append(adapter)

    @overload
    def register(self, key: str) -> Callable[[F], F]: ...

    @overload
    def register(self, key: str, func: Any) -> Any: ...

    def register(self, key: str, func: Any = None) -> Any:
        """Register ``func`` for ``key``; without ``func``, return a decorator."""
        validate_key(key)
        if func is None:

            def decorator(f: F) -> F:
                self.register(key, f)
                return f

            return decorator
        if not (isinstance(func, str) or callable(func)):
            raise ConfigurationError(
                f"handler for {key!r} must be a callable or a dotted path, got {func!r}"
            )
        with self._lock:
            self._handlers[key] = func
        return func

    def update(self, mapping: Mapping[str, Any]) -> None:
        """Register every ``key: handler`` of ``mapping``."""
        for key, func in mapping.items():
            self.register(key, func)

    def unregister(self, key: str) -> None:
        """Forget the handler of ``key`` (no error if there is none)."""
        with self._lock:
            self._handlers.pop(key, None)

    def clear(self) -> None:
        """Forget every handler."""
        with self._lock:
            self._handlers.clear()

    def __contains__(self, key: object) -> bool:
        return key in self._handlers

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._handlers)

    def keys(self) -> list[str]:
        """The registered keys, sorted."""
        return sorted(self._handlers)

    def get(self, key: str) -> Handler | None:
        """The handler for ``key`` (importing and adapting it on first use), or None."""
        func = self._handlers.get(key)
        # Functions skip resolution unless an adapter might claim them (a DRF function view).
        if func is None or (
            (inspect.isfunction(func) or inspect.ismethod(func)) and not self.adapters
        ):
            return func
        resolved = self._resolve(key, func)
        with self._lock:
            self._handlers[key] = resolved
        return resolved

    def _resolve(self, key: str, func: Any) -> Handler:
        if isinstance(func, str):
            func = import_string(func)
        for adapter in self.adapters:
            adapted = adapter(func)
            if adapted is not None:
                return adapted
        if not callable(func):
            raise ConfigurationError(
                f"handler for {key!r} resolved to {func!r}, which is not callable"
            )
        result: Handler = func
        return result


#: The process-wide registry that ``@zc_events.handler`` writes to.
handlers = HandlerRegistry()


def handler(key: str) -> Callable[[F], F]:
    """Decorator: serve ``key`` with the decorated function, which takes a :class:`Request`."""
    return handlers.register(key)


#: Keys under this prefix are reserved: ``zc-events.health.<SERVICE>`` is every worker's health
#: check (``zc-events health SERVICE``).
HEALTH_PREFIX = "zc-events.health."


def health_key(service: str) -> str:
    """The reserved key a worker of ``service`` answers health checks on."""
    return HEALTH_PREFIX + service


def caused_by(envelope: Envelope) -> str:
    """``" caused by <id>"`` for log lines when a handler's call made ``envelope``, else ``""``."""
    cause = envelope.headers.get(CAUSED_BY_HEADER)
    return f" caused by {cause}" if cause else ""


class Dispatcher:
    """Turns envelopes into handler calls and handler outcomes into Responses.

    Looks keys up in ``registries`` in order (by default the process-wide registry, then the
    handlers named in settings), runs server-side middleware, and never raises for handler failures.

    Handlers may be ``async def``: sync workers call :meth:`handle`/:meth:`dispatch`, which run
    them on zc-events' background event loop (one per process); asyncio workers await
    :meth:`ahandle`/:meth:`adispatch`, which await them on the running loop and run sync handlers
    on an executor. Both faces share one implementation.

    Logging (logger ``zc_events``): a handler's exception at ERROR with method, key, id and the
    traceback; one INFO line per handled message (method, key, id, duration, ``ok`` or the error
    type) unless ``ZC_EVENTS_LOG_MESSAGES`` is off. ``settings`` (default: the global settings)
    are read once, here: ``ZC_EVENTS_SEND_TRACEBACKS``, ``ZC_EVENTS_LOG_MESSAGES`` and
    ``ZC_EVENTS_MAX_MESSAGE_BYTES``. Log lines name the message's id and, for a call a handler
    made, the id of the request that caused it (``id <id> caused by <id>``).

    With ``service``, it also answers the health check key ``zc-events.health.<service>``
    (without middleware), which :meth:`keys` then lists so every transport binds it.
    """

    def __init__(
        self,
        registries: Sequence[HandlerRegistry] | None = None,
        middleware: Iterable[Middleware] = (),
        *,
        settings: Settings | None = None,
        service: str | None = None,
    ) -> None:
        self.registries = list(registries) if registries is not None else [handlers]
        self.middleware = list(middleware)
        #: The health check key this dispatcher answers, or None.
        self.health_key = health_key(service) if service else None
        settings = settings if settings is not None else global_settings()
        #: Error responses carry the traceback (``ZC_EVENTS_SEND_TRACEBACKS``).
        self.send_tracebacks = settings.send_tracebacks
        #: One INFO line per handled message (``ZC_EVENTS_LOG_MESSAGES``).
        self.log_messages = settings.log_messages
        #: :meth:`handle` refuses larger bodies (``ZC_EVENTS_MAX_MESSAGE_BYTES``).
        self.max_message_bytes = settings.max_message_bytes

    @classmethod
    def from_settings(cls, settings: Settings, backend: str = "") -> Dispatcher:
        """What every worker serves by default: the process-wide handlers, then
        ``ZC_EVENTS_HANDLERS``/``JOB_MAPPING``, with the server middleware of ``settings`` (told
        the ``backend`` name with :meth:`Middleware.bind`); it answers the health check key of
        ``SERVICE_NAME`` when that is set."""
        from ._middleware import build_middleware

        registries = [handlers]
        configured = settings.handlers
        if configured:
            registries.append(HandlerRegistry(configured))
        middleware = build_middleware(settings)
        if backend:
            for mw in middleware:
                mw.bind(backend)
        service = settings.get("SERVICE_NAME", None)
        return cls(
            registries,
            middleware,
            settings=settings,
            service=service if isinstance(service, str) and service else None,
        )

    def handler_for(self, key: str) -> Handler | None:
        """The handler that serves ``key``, or None."""
        for registry in self.registries:
            if key in registry:
                return registry.get(key)
        return None

    def handles(self, key: str) -> bool:
        """True if some handler serves ``key`` (or it is this dispatcher's health check key)."""
        for registry in self.registries:  # a loop: 5x faster than any() here
            if key in registry:
                return True
        return key == self.health_key

    def keys(self) -> list[str]:
        """Every key served (the health check key included), sorted."""
        keys = {k for registry in self.registries for k in registry}
        if self.health_key is not None:
            keys.add(self.health_key)
        return sorted(keys)

    def handler_keys(self) -> list[str]:
        """The keys served by handlers (:meth:`keys` without the health check key), sorted."""
        return sorted({k for registry in self.registries for k in registry})

    def health(self) -> dict[str, Any]:
        """The health check's answer: this worker's service, host, pid and handler count."""
        return {
            "status": "ok",
            "service": (self.health_key or "")[len(HEALTH_PREFIX) :],
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "handlers": len(self.handler_keys()),
        }

    def is_async(self, key: str) -> bool:
        """True when the handler of ``key`` is an ``async def`` (or an object whose ``__call__``
        is); async workers await those on their loop and run the others on threads."""
        func = self.handler_for(key)
        return func is not None and is_coroutine_callable(func)

    def dispatch(self, envelope: Envelope) -> Response:
        """Call the handler for ``envelope`` and return its outcome as a Response.

        An ``async def`` handler runs on zc-events' background event loop (one per process);
        this call blocks until it finishes. While the handler runs,
        :func:`zc_events.current_request` returns its request, and calls it makes inherit its
        deadline.
        """
        return drive(self._dispatch(envelope, _SYNC_STEPS))

    async def adispatch(self, envelope: Envelope, *, executor: Executor | None = None) -> Response:
        """Like :meth:`dispatch`, for async workers: ``async def`` handlers are awaited on the
        running loop, sync handlers run on ``executor`` (default: the loop's default executor)."""
        return await self._dispatch(envelope, _AsyncSteps(executor))

    async def _dispatch(self, envelope: Envelope, steps: _Steps) -> Response:
        # The one implementation of dispatch. The sync face drives it without a loop: its
        # steps never suspend. The async face awaits it.
        if envelope.key == self.health_key:
            return Response(self.health())
        timed = self.log_messages and log.isEnabledFor(logging.INFO)
        started = time.perf_counter() if timed else 0.0
        try:
            # Unwrap in the reverse of the order the caller wrapped (outgoing_request runs in
            # list order), so e.g. a signature is checked on what was signed.
            for mw in reversed(self.middleware):
                envelope = await steps.hook(mw, "incoming_request", envelope)
            func = self.handler_for(envelope.key)
            if func is None:
                response = Response.error(
                    "NoRouteError", f"no handler for key {envelope.key!r} in this service", 404
                )
            else:
                token = serving.set(envelope)
                try:
                    result = await steps.call(func, Request(envelope))
                finally:
                    serving.reset(token)
                response = result if isinstance(result, Response) else Response(result)
        except SignatureError as exc:  # refused before the handler; logged by the middleware
            response = Response.from_exception(exc)
        except Exception as exc:
            log.error(
                "%s %r (id %s%s) failed: %s: %s",
                envelope.method,
                envelope.key,
                envelope.id,
                caused_by(envelope),
                type(exc).__name__,
                exc,
                exc_info=exc,
            )
            response = Response.from_exception(exc, trace=self.send_tracebacks)
        for mw in self.middleware:
            try:
                response = await steps.hook(mw, "outgoing_response", envelope, response)
            except Exception as exc:
                log.exception("middleware %r failed on the response to %r", mw, envelope.key)
                response = Response.from_exception(exc, trace=self.send_tracebacks)
        if timed:
            log.info(
                "%s %r id %s%s %.1f ms %s",
                envelope.method,
                envelope.key,
                envelope.id,
                caused_by(envelope),
                (time.perf_counter() - started) * 1000,
                response.errors[0].get("type", "error") if response.has_errors else "ok",
            )
        return response

    def encode_response(self, envelope: Envelope, response: Response) -> bytes:
        """Encode ``response``; a result that is not JSON becomes an error response."""
        return encode_reply(response, envelope.key)

    def handle(self, body: bytes | str) -> bytes | None:
        """Decode wire bytes, dispatch, and return the encoded reply.

        Returns None when no reply is due: a ``*_no_wait`` message, or one whose deadline passed
        (skipped, as nobody waits for it). Raises :class:`EnvelopeError` for undecodable messages,
        which the transport should dead-letter, including bodies over
        ``ZC_EVENTS_MAX_MESSAGE_BYTES``.
        """
        return self.handle_envelope(self.decode(body))

    async def ahandle(self, body: bytes | str, *, executor: Executor | None = None) -> bytes | None:
        """Like :meth:`handle`, for async workers (see :meth:`adispatch`)."""
        return await self.ahandle_envelope(self.decode(body), executor=executor)

    def check_size(self, body: bytes | str) -> None:
        """Raise :class:`EnvelopeError` if ``body`` is over ``ZC_EVENTS_MAX_MESSAGE_BYTES``."""
        if len(body) > self.max_message_bytes:
            raise EnvelopeError(
                f"message is {len(body)} bytes, over ZC_EVENTS_MAX_MESSAGE_BYTES "
                f"({self.max_message_bytes}); large bodies go through the s3_claim_check "
                "middleware"
            )

    def decode(self, body: bytes | str) -> Envelope:
        """The envelope in wire bytes; :class:`EnvelopeError` if malformed or too large."""
        self.check_size(body)
        return Envelope.decode(body)

    def skip_expired(self, envelope: Envelope) -> bool:
        """True (with a warning) when nobody waits for ``envelope`` any more: skip it."""
        if not envelope.expired():
            return False
        log.warning(
            "skipping %s %r (id %s%s): its deadline passed %.3f s ago",
            envelope.method,
            envelope.key,
            envelope.id,
            caused_by(envelope),
            -(envelope.time_left() or 0.0),
        )
        return True

    def handle_envelope(self, envelope: Envelope) -> bytes | None:
        """Like :meth:`handle` for an already decoded envelope."""
        if self.skip_expired(envelope):
            return None
        response = self.respond(envelope)
        return None if response is None else self.encode_response(envelope, response)

    async def ahandle_envelope(
        self, envelope: Envelope, *, executor: Executor | None = None
    ) -> bytes | None:
        """Like :meth:`handle_envelope`, for async workers (see :meth:`adispatch`)."""
        if self.skip_expired(envelope):
            return None
        response = await self.arespond(envelope, executor=executor)
        return None if response is None else self.encode_response(envelope, response)

    def respond(self, envelope: Envelope) -> Response | None:
        """Dispatch; return the Response when a reply is due, else log failures and return None."""
        return self._reply_due(envelope, self.dispatch(envelope))

    async def arespond(
        self, envelope: Envelope, *, executor: Executor | None = None
    ) -> Response | None:
        """Like :meth:`respond`, for async workers (see :meth:`adispatch`)."""
        return self._reply_due(envelope, await self.adispatch(envelope, executor=executor))

    def _reply_due(self, envelope: Envelope, response: Response) -> Response | None:
        if envelope.reply_to is not None:
            return response
        if response.has_errors:
            log.error(
                "no-wait %s %r (id %s%s) failed: %s",
                envelope.method,
                envelope.key,
                envelope.id,
                caused_by(envelope),
                response.errors[0].get("trace") or response.errors,
            )
        return None


def is_coroutine_callable(func: object) -> bool:
    """True for ``async def`` functions, partials of them, and objects with ``async def
    __call__``."""
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 - the method itself is inspected
    )


class _Steps:
    """How :meth:`Dispatcher._dispatch` runs a middleware hook and a handler."""

    async def hook(self, mw: Middleware, name: str, *args: Any) -> Any:
        raise NotImplementedError

    async def call(self, func: Handler, request: Request) -> Any:
        raise NotImplementedError


class _SyncSteps(_Steps):
    # Never suspends: blocking work happens inline, coroutines on the background loop.
    async def hook(self, mw: Middleware, name: str, *args: Any) -> Any:
        return call_hook(mw, name, *args)

    async def call(self, func: Handler, request: Request) -> Any:
        result = func(request)
        if inspect.iscoroutine(result):
            result = run_coroutine(result)
        elif inspect.isawaitable(result):
            result = run_coroutine(_await(result))
        return result


class _AsyncSteps(_Steps):
    def __init__(self, executor: Executor | None) -> None:
        self.executor = executor

    async def hook(self, mw: Middleware, name: str, *args: Any) -> Any:
        return await call_hook_async(mw, name, *args)

    async def call(self, func: Handler, request: Request) -> Any:
        if is_coroutine_callable(func):
            result = func(request)
        else:
            loop = asyncio.get_running_loop()
            context = contextvars.copy_context()
            result = await loop.run_in_executor(self.executor, context.run, func, request)
        if inspect.isawaitable(result):
            result = await result
        return result


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


_SYNC_STEPS = _SyncSteps()
