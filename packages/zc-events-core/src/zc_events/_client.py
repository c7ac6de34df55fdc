"""EventClient and the parts it shares with AsyncEventClient. How a call travels:
docs/architecture.md.

Like httpx's ``BaseClient``: :class:`BaseClient` holds everything that is not I/O (settings,
envelope building, middleware), the verb mixins spell the verbs once for both faces, and
:class:`EventClient` / :class:`~zc_events.AsyncEventClient` differ only where they wait.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from ._backend import Backend, create_backend
from ._context import inherit_timeout
from ._envelope import Envelope, new_id
from ._middleware import Middleware, build_middleware, call_hook, call_hook_async, finish_request
from ._response import Response
from ._settings import Settings, global_settings

__all__ = ["BaseBatch", "BaseClient", "Batch", "EventClient", "NoWaitVerbs", "WaitVerbs"]

R = TypeVar("R")
S = TypeVar("S")


class BaseClient:
    """What the sync and async clients share: settings, default timeout, middleware, and
    building envelopes. ``timeout`` is the default wait in seconds (``ZC_EVENTS_TIMEOUT``),
    ``middleware`` overrides ``ZC_EVENTS_MIDDLEWARE``."""

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        timeout: float | None = None,
        middleware: Iterable[Any] | None = None,
    ) -> None:
        self.settings = settings if settings is not None else global_settings()
        self.timeout = self.settings.timeout if timeout is None else float(timeout)
        self.middleware: list[Middleware] = build_middleware(self.settings, middleware)

    def build_envelope(
        self,
        method: str,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        priority: int | None = None,
        wait: bool = False,
    ) -> Envelope:
        """A validated envelope for a call (before middleware); ``timeout`` sets its deadline.

        A waiting call (``wait=True``) gets its reply address now, before middleware runs, so
        that a signature covers it; backends keep it (the legacy wire uses it as the Redis reply
        list). Raises EnvelopeError for bad arguments (non-JSON data, bad key, method or timeout).
        """
        return Envelope.create(
            key,
            method,
            data,
            headers,
            timeout=timeout,
            priority=priority,
            reply_to=new_id() if wait else None,
        )

    def wait_for(self, timeout: float | None) -> float:
        """The wait in seconds for a call given ``timeout`` (None: the client's default).

        Inside a handler it is capped to what is left of the served request's deadline, and
        RequestTimeout is raised at once when that has passed.
        """
        return inherit_timeout(self.timeout if timeout is None else timeout)

    def finished(
        self, envelope: Envelope, response: Response | None, error: BaseException | None
    ) -> None:
        """Run the client middleware's ``request_finished`` hooks (never raises)."""
        finish_request(self.middleware, envelope, response, error)

    def outgoing(self, envelope: Envelope) -> Envelope:
        """Run the client middleware's ``outgoing_request`` hooks, in order."""
        for mw in self.middleware:
            envelope = call_hook(mw, "outgoing_request", envelope)
        return envelope

    def incoming(self, envelope: Envelope, response: Response) -> Response:
        """Run the client middleware's ``incoming_response`` hooks, in reverse order."""
        for mw in reversed(self.middleware):
            response = call_hook(mw, "incoming_response", envelope, response)
        return response

    async def aoutgoing(self, envelope: Envelope) -> Envelope:
        """Like :meth:`outgoing`, awaiting async hooks."""
        for mw in self.middleware:
            envelope = await call_hook_async(mw, "outgoing_request", envelope)
        return envelope

    async def aincoming(self, envelope: Envelope, response: Response) -> Response:
        """Like :meth:`incoming`, awaiting async hooks."""
        for mw in reversed(self.middleware):
            response = await call_hook_async(mw, "incoming_response", envelope, response)
        return response


class WaitVerbs(Generic[R]):
    """The waiting verbs, spelled once for both clients: each calls :meth:`request`, so on
    AsyncEventClient they return a coroutine to await."""

    def request(
        self,
        method: str,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        priority: int | None = None,
    ) -> R:
        raise NotImplementedError

    def get(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        priority: int | None = None,
    ) -> R:
        """GET ``key`` and wait for the Response."""
        return self.request("GET", key, data, headers, timeout=timeout, priority=priority)

    def post(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        priority: int | None = None,
    ) -> R:
        """POST to ``key`` and wait for the Response."""
        return self.request("POST", key, data, headers, timeout=timeout, priority=priority)

    def put(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        priority: int | None = None,
    ) -> R:
        """PUT to ``key`` and wait for the Response."""
        return self.request("PUT", key, data, headers, timeout=timeout, priority=priority)

    def patch(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        priority: int | None = None,
    ) -> R:
        """PATCH ``key`` and wait for the Response."""
        return self.request("PATCH", key, data, headers, timeout=timeout, priority=priority)

    def delete(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        priority: int | None = None,
    ) -> R:
        """DELETE ``key`` and wait for the Response."""
        return self.request("DELETE", key, data, headers, timeout=timeout, priority=priority)

    call = post


class NoWaitVerbs(Generic[S]):
    """The ``*_no_wait`` verbs, spelled once for the clients and batches: each calls
    :meth:`request_no_wait` and returns (on AsyncEventClient: awaits to) the message id."""

    def request_no_wait(
        self,
        method: str,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> S:
        raise NotImplementedError

    def get_no_wait(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> S:
        """GET ``key`` without waiting; returns the message id."""
        return self.request_no_wait("GET", key, data, headers, priority=priority)

    def post_no_wait(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> S:
        """POST to ``key`` without waiting; returns the message id."""
        return self.request_no_wait("POST", key, data, headers, priority=priority)

    def put_no_wait(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> S:
        """PUT to ``key`` without waiting; returns the message id."""
        return self.request_no_wait("PUT", key, data, headers, priority=priority)

    def patch_no_wait(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> S:
        """PATCH ``key`` without waiting; returns the message id."""
        return self.request_no_wait("PATCH", key, data, headers, priority=priority)

    def delete_no_wait(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> S:
        """DELETE ``key`` without waiting; returns the message id."""
        return self.request_no_wait("DELETE", key, data, headers, priority=priority)

    call_no_wait = post_no_wait


class EventClient(BaseClient, WaitVerbs[Response], NoWaitVerbs[str]):
    """Calls handlers in other services over a backend. Safe to share between threads.

    ``backend`` is a backend name, a :class:`Backend` instance, or None for the
    ``ZC_EVENTS_BACKEND`` setting; ``options`` are passed to the backend. ``timeout`` is the
    default wait in seconds (``ZC_EVENTS_TIMEOUT``), ``middleware`` overrides
    ``ZC_EVENTS_MIDDLEWARE``.
    """

    def __init__(
        self,
        backend: str | Backend | None = None,
        *,
        settings: Settings | None = None,
        timeout: float | None = None,
        middleware: Iterable[Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(settings=settings, timeout=timeout, middleware=middleware)
        if isinstance(backend, Backend):
            self.backend = backend
        else:
            self.backend = create_backend(backend, self.settings, **options)
        for mw in self.middleware:
            mw.bind(self.backend.name)

    def request(
        self,
        method: str,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        priority: int | None = None,
    ) -> Response:
        """Send ``method`` to ``key`` and wait for the reply.

        Returns the Response, remote failures included. Raises RequestTimeout, NoRouteError,
        PublishError, or EnvelopeError for bad arguments (non-JSON data, bad key or method).
        """
        wait = self.wait_for(timeout)
        envelope = self.build_envelope(
            method, key, data, headers, timeout=wait, priority=priority, wait=True
        )
        self.backend.prepare_request(envelope)
        if not self.middleware:
            return self.backend.request(envelope, wait)
        try:
            envelope = self.outgoing(envelope)
            response = self.incoming(envelope, self.backend.request(envelope, wait))
        except BaseException as exc:
            self.finished(envelope, None, exc)
            raise
        self.finished(envelope, response, None)
        return response

    def request_no_wait(
        self,
        method: str,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> str:
        """Send ``method`` to ``key`` without waiting; return the message id once the transport
        has the message. Raises NoRouteError, PublishError or EnvelopeError."""
        envelope = self.build_envelope(method, key, data, headers, priority=priority)
        if not self.middleware:
            self.backend.send(envelope)
            return envelope.id
        try:
            envelope = self.outgoing(envelope)
            self.backend.send(envelope)
        except BaseException as exc:
            self.finished(envelope, None, exc)
            raise
        self.finished(envelope, None, None)
        return envelope.id

    def batch(self) -> Batch:
        """Collect ``*_no_wait`` calls and publish them together (confirms pipelined)::

        with client.batch() as batch:
            for item in items:
                batch.post_no_wait('index', data=item)
        """
        return Batch(self)

    def close(self) -> None:
        """Close the backend."""
        self.backend.close()

    def __enter__(self) -> EventClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<EventClient backend={self.backend.name!r}>"


class BaseBatch(NoWaitVerbs[str]):
    """Queues ``*_no_wait`` calls (validated at once; each returns its message id) for a flush
    that runs the client middleware and publishes them together."""

    def __init__(self, client: BaseClient) -> None:
        self.client = client
        self.envelopes: list[Envelope] = []

    def request_no_wait(
        self,
        method: str,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> str:
        """Queue ``method`` to ``key``; returns the message id."""
        envelope = self.client.build_envelope(method, key, data, headers, priority=priority)
        self.envelopes.append(envelope)
        return envelope.id

    def _take(self) -> list[Envelope]:
        envelopes, self.envelopes = self.envelopes, []
        return envelopes

    def _finished(self, envelopes: list[Envelope], error: BaseException | None) -> None:
        """Run ``request_finished`` for each published envelope; with ``error`` (what the flush
        raised), the ones it names as not published (all when it names none) get it."""
        if not self.client.middleware:
            return
        failed = {id(env) for env in getattr(error, "failed", envelopes)} if error else set()
        for env in envelopes:
            self.client.finished(env, None, error if id(env) in failed else None)

    def __len__(self) -> int:
        return len(self.envelopes)


class Batch(BaseBatch):
    """Fire-and-forget calls published together by :meth:`flush` (or on leaving the ``with``).

    ``flush`` raises PublishError naming every message the transport did not take.
    """

    client: EventClient

    def __init__(self, client: EventClient) -> None:
        super().__init__(client)

    def flush(self) -> int:
        """Publish everything queued; return how many messages were published."""
        envelopes = [self.client.outgoing(envelope) for envelope in self._take()]
        if envelopes:
            try:
                self.client.backend.send_many(envelopes)
            except BaseException as exc:
                self._finished(envelopes, exc)
                raise
            self._finished(envelopes, None)
        return len(envelopes)

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        if exc_type is None:
            self.flush()
