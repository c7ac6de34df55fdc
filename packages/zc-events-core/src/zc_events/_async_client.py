"""AsyncEventClient: the verbs of EventClient as coroutines."""

from __future__ import annotations

from collections.abc import Coroutine, Iterable
from typing import Any

from ._async_backend import AsyncBackend, ThreadedAsyncBackend, create_async_backend
from ._backend import Backend
from ._client import BaseBatch, BaseClient, NoWaitVerbs, WaitVerbs
from ._response import Response
from ._settings import Settings

__all__ = ["AsyncBatch", "AsyncEventClient"]


class AsyncEventClient(
    BaseClient,
    WaitVerbs[Coroutine[Any, Any, Response]],
    NoWaitVerbs[Coroutine[Any, Any, str]],
):
    """Calls handlers in other services from asyncio code: the verbs of
    :class:`~zc_events.EventClient` as coroutines, with the same arguments, Response,
    exceptions and middleware (async hooks are awaited)::

        async with AsyncEventClient() as client:
            response = await client.get('add', data={'x': 1, 'y': 1})

    ``backend`` is a backend name (its native :class:`AsyncBackend`, or the sync one on threads:
    see :func:`create_async_backend`), an :class:`AsyncBackend`, a sync :class:`Backend` (run on
    threads), or None for the ``ZC_EVENTS_BACKEND`` setting; ``options`` go to the backend.

    Safe to share between tasks: concurrent calls share the backend's connection. Cancelling a
    task that awaits a call (``task.cancel()``, ``asyncio.wait_for``, ``asyncio.timeout``)
    cancels only that call. Close it with ``await client.aclose()`` or ``async with``.
    """

    def __init__(
        self,
        backend: str | AsyncBackend | Backend | None = None,
        *,
        settings: Settings | None = None,
        timeout: float | None = None,
        middleware: Iterable[Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(settings=settings, timeout=timeout, middleware=middleware)
        if isinstance(backend, AsyncBackend):
            self.backend = backend
        elif isinstance(backend, Backend):
            self.backend = ThreadedAsyncBackend(backend)
        else:
            self.backend = create_async_backend(backend, self.settings, **options)
        for mw in self.middleware:
            mw.bind(self.backend.name)

    async def request(
        self,
        method: str,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        priority: int | None = None,
    ) -> Response:
        """Send ``method`` to ``key`` and await the reply.

        Returns the Response, remote failures included. Raises RequestTimeout, NoRouteError,
        PublishError, or EnvelopeError for bad arguments (non-JSON data, bad key or method).
        """
        wait = self.wait_for(timeout)
        envelope = self.build_envelope(
            method, key, data, headers, timeout=wait, priority=priority, wait=True
        )
        self.backend.prepare_request(envelope)
        if not self.middleware:
            return await self.backend.request(envelope, wait)
        try:
            envelope = await self.aoutgoing(envelope)
            response = await self.aincoming(envelope, await self.backend.request(envelope, wait))
        except BaseException as exc:
            self.finished(envelope, None, exc)
            raise
        self.finished(envelope, response, None)
        return response

    async def request_no_wait(
        self,
        method: str,
        key: str,
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        priority: int | None = None,
    ) -> str:
        """Send ``method`` to ``key`` without waiting for a reply; return the message id once
        the transport has the message. Raises NoRouteError, PublishError or EnvelopeError."""
        envelope = self.build_envelope(method, key, data, headers, priority=priority)
        if not self.middleware:
            await self.backend.send(envelope)
            return envelope.id
        try:
            envelope = await self.aoutgoing(envelope)
            await self.backend.send(envelope)
        except BaseException as exc:
            self.finished(envelope, None, exc)
            raise
        self.finished(envelope, None, None)
        return envelope.id

    def batch(self) -> AsyncBatch:
        """Collect ``*_no_wait`` calls and publish them together (confirms pipelined)::

        async with client.batch() as batch:
            for item in items:
                batch.post_no_wait('index', data=item)   # queued: no await
        """
        return AsyncBatch(self)

    async def aclose(self) -> None:
        """Close the backend."""
        await self.backend.aclose()

    async def __aenter__(self) -> AsyncEventClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<AsyncEventClient backend={self.backend.name!r}>"


class AsyncBatch(BaseBatch):
    """Fire-and-forget calls queued synchronously (each verb returns the message id) and
    published together by ``await batch.flush()`` or on leaving ``async with``.

    ``flush`` raises PublishError naming every message the transport did not take.
    """

    client: AsyncEventClient

    def __init__(self, client: AsyncEventClient) -> None:
        super().__init__(client)

    async def flush(self) -> int:
        """Publish everything queued; return how many messages were published."""
        envelopes = self._take()
        if self.client.middleware:
            envelopes = [await self.client.aoutgoing(envelope) for envelope in envelopes]
        if envelopes:
            try:
                await self.client.backend.send_many(envelopes)
            except BaseException as exc:
                self._finished(envelopes, exc)
                raise
            self._finished(envelopes, None)
        return len(envelopes)

    async def __aenter__(self) -> AsyncBatch:
        return self

    async def __aexit__(self, exc_type: object, *exc_info: object) -> None:
        if exc_type is None:
            await self.flush()
