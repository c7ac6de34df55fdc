"""EventClient: the verbs. How a call travels: docs/architecture.md."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._backend import Backend, create_backend
from ._envelope import Envelope, new_id
from ._middleware import Middleware, build_middleware
from ._response import Response
from ._settings import Settings, global_settings

__all__ = ["Batch", "EventClient"]


class EventClient:
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
        self.settings = settings if settings is not None else global_settings()
        if isinstance(backend, Backend):
            self.backend = backend
        else:
            self.backend = create_backend(backend, self.settings, **options)
        self.timeout = self.settings.timeout if timeout is None else float(timeout)
        self.middleware: list[Middleware] = build_middleware(self.settings, middleware)

    # -- core ----------------------------------------------------------------------------
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
        wait = self.timeout if timeout is None else timeout
        # The reply address is chosen before middleware runs, so that a signature covers it;
        # backends keep it (the legacy wire uses it as the Redis reply list).
        envelope = Envelope.create(
            key, method, data, headers, timeout=wait, priority=priority, reply_to=new_id()
        )
        self.backend.prepare_request(envelope)
        for mw in self.middleware:
            envelope = mw.outgoing_request(envelope)
        response = self.backend.request(envelope, wait)
        for mw in reversed(self.middleware):
            response = mw.incoming_response(envelope, response)
        return response

    def _envelope_no_wait(
        self,
        method: str,
        key: str,
        data: Any,
        headers: dict[str, Any] | None,
        priority: int | None,
    ) -> Envelope:
        envelope = Envelope.create(key, method, data, headers, priority=priority)
        for mw in self.middleware:
            envelope = mw.outgoing_request(envelope)
        return envelope

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
        envelope = self._envelope_no_wait(method, key, data, headers, priority)
        self.backend.send(envelope)
        return envelope.id

    # -- verbs ---------------------------------------------------------------------------
    def get(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        priority: int | None = None,
    ) -> Response:
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
    ) -> Response:
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
    ) -> Response:
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
    ) -> Response:
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
    ) -> Response:
        """DELETE ``key`` and wait for the Response."""
        return self.request("DELETE", key, data, headers, timeout=timeout, priority=priority)

    call = post

    def get_no_wait(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> str:
        """GET ``key`` without waiting; returns the message id."""
        return self.request_no_wait("GET", key, data, headers, priority=priority)

    def post_no_wait(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> str:
        """POST to ``key`` without waiting; returns the message id."""
        return self.request_no_wait("POST", key, data, headers, priority=priority)

    def put_no_wait(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> str:
        """PUT to ``key`` without waiting; returns the message id."""
        return self.request_no_wait("PUT", key, data, headers, priority=priority)

    def patch_no_wait(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> str:
        """PATCH ``key`` without waiting; returns the message id."""
        return self.request_no_wait("PATCH", key, data, headers, priority=priority)

    def delete_no_wait(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> str:
        """DELETE ``key`` without waiting; returns the message id."""
        return self.request_no_wait("DELETE", key, data, headers, priority=priority)

    call_no_wait = post_no_wait

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


class Batch:
    """Fire-and-forget calls published together by :meth:`flush` (or on leaving the ``with``).

    ``flush`` raises PublishError naming every message the transport did not take.
    """

    def __init__(self, client: EventClient) -> None:
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
        envelope = self.client._envelope_no_wait(method, key, data, headers, priority)
        self.envelopes.append(envelope)
        return envelope.id

    def get_no_wait(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> str:
        """Queue a GET."""
        return self.request_no_wait("GET", key, data, headers, priority=priority)

    def post_no_wait(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> str:
        """Queue a POST."""
        return self.request_no_wait("POST", key, data, headers, priority=priority)

    def put_no_wait(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> str:
        """Queue a PUT."""
        return self.request_no_wait("PUT", key, data, headers, priority=priority)

    def patch_no_wait(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> str:
        """Queue a PATCH."""
        return self.request_no_wait("PATCH", key, data, headers, priority=priority)

    def delete_no_wait(
        self,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> str:
        """Queue a DELETE."""
        return self.request_no_wait("DELETE", key, data, headers, priority=priority)

    call_no_wait = post_no_wait

    def flush(self) -> int:
        """Publish everything queued; return how many messages were published."""
        envelopes, self.envelopes = self.envelopes, []
        if envelopes:
            self.client.backend.send_many(envelopes)
        return len(envelopes)

    def __len__(self) -> int:
        return len(self.envelopes)

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        if exc_type is None:
            self.flush()
