"""The asyncio transport contract, and the thread adapter for transports without one.

A transport may provide a native :class:`AsyncBackend` by overriding
:meth:`Backend.async_backend_class`; :func:`create_async_backend` uses it, and otherwise wraps
the sync backend in :class:`ThreadedAsyncBackend`. ``docs/writing-a-transport.md`` describes
the contract.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ._backend import Backend, BaseBackend, batch_error, resolve_backend
from ._envelope import Envelope
from ._exceptions import ConfigurationError
from ._handlers import Dispatcher
from ._response import Response
from ._settings import Settings, global_settings

__all__ = ["AsyncBackend", "ThreadedAsyncBackend", "create_async_backend"]


class AsyncBackend(BaseBackend, ABC):
    """An asyncio transport: the client side of :class:`Backend` as coroutines.

    :meth:`request` publishes and awaits the reply, :meth:`send` publishes without waiting,
    :meth:`send_many` publishes a batch, :meth:`aclose` releases connections. One instance is
    shared by every task of an :class:`~zc_events.AsyncEventClient`: concurrent requests must be
    matched to their replies (by correlation id), and cancelling the task awaiting
    :meth:`request` must cancel only that call. Pass
    :class:`zc_events.testing.conformance.AsyncBackendConformance`.
    """

    @abstractmethod
    async def request(self, envelope: Envelope, timeout: float) -> Response:
        """Publish ``envelope`` and return the reply; raise RequestTimeout after ``timeout`` s."""

    @abstractmethod
    async def send(self, envelope: Envelope) -> None:
        """Publish ``envelope`` without waiting for a reply; return once the transport has it."""

    async def send_many(self, envelopes: Sequence[Envelope]) -> None:
        """Publish several envelopes concurrently; raise PublishError naming any the transport
        did not take."""
        results = await asyncio.gather(
            *(self.send(envelope) for envelope in envelopes), return_exceptions=True
        )
        failed: list[tuple[Envelope, BaseException]] = []
        for envelope, result in zip(envelopes, results, strict=True):
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, BaseException):
                failed.append((envelope, result))
        if failed:
            raise batch_error(failed, len(envelopes))

    async def aclose(self) -> None:
        """Release connections and tasks."""

    async def __aenter__(self) -> AsyncBackend:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class ThreadedAsyncBackend(AsyncBackend):
    """Runs a sync :class:`Backend` on a thread pool: the async face of any transport.

    Each waiting call occupies one of ``max_threads`` threads (default 64) until its reply or
    timeout, so at most that many calls are in flight; more wait for a free thread. Cancelling
    the awaiting task returns at once; the thread finishes the sync call (bounded by its timeout)
    and its reply is dropped. Used by :func:`create_async_backend` for backends without a native
    :class:`AsyncBackend` (for example ``celery``).
    """

    def __init__(self, backend: Backend, *, max_threads: int = 64) -> None:
        if not isinstance(backend, Backend):
            raise ConfigurationError(
                f"ThreadedAsyncBackend wraps a zc_events.Backend, got {backend!r}"
            )
        if isinstance(max_threads, bool) or not isinstance(max_threads, int) or max_threads < 1:
            raise ConfigurationError(
                f"ThreadedAsyncBackend option 'max_threads' must be an int >= 1, "
                f"got {max_threads!r}"
            )
        super().__init__(settings=backend.settings)
        self.backend = backend
        self.name = backend.name  # type: ignore[misc]
        self.unknown_key_error = backend.unknown_key_error  # type: ignore[misc]
        self._executor = ThreadPoolExecutor(
            max_workers=max_threads, thread_name_prefix=f"zc-events-{backend.name}-async"
        )

    def prepare_request(self, envelope: Envelope) -> None:
        self.backend.prepare_request(envelope)

    async def request(self, envelope: Envelope, timeout: float) -> Response:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.backend.request, envelope, timeout)

    async def send(self, envelope: Envelope) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.backend.send, envelope)

    async def send_many(self, envelopes: Sequence[Envelope]) -> None:
        # The sync backend pipelines its own batches (publisher confirms) in one thread.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.backend.send_many, envelopes)

    def default_dispatcher(self) -> Dispatcher:
        return self.backend.default_dispatcher()

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self.backend.close)

    def __repr__(self) -> str:
        return f"<ThreadedAsyncBackend {self.backend!r}>"


def create_async_backend(
    name: str | None = None, settings: Settings | None = None, **options: Any
) -> AsyncBackend:
    """Build the async face of backend ``name`` (default: the ``ZC_EVENTS_BACKEND`` setting).

    Names and options resolve exactly as in :func:`create_backend`. The transport's native
    :class:`AsyncBackend` is used when :meth:`Backend.async_backend_class` returns one; otherwise
    the sync backend runs on threads (:class:`ThreadedAsyncBackend`).
    """
    settings = settings if settings is not None else global_settings()
    cls, options = resolve_backend(name, settings, options)
    native = cls.async_backend_class()
    if native is None:
        return ThreadedAsyncBackend(cls(settings=settings, **options))
    if not (isinstance(native, type) and issubclass(native, AsyncBackend)):
        raise ConfigurationError(
            f"backend {cls.name!r}: async_backend_class() returned {native!r}, "
            "not a zc_events.AsyncBackend subclass"
        )
    return native(settings=settings, **options)
