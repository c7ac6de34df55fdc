"""The conformance suite against the embedded memory backend: sync (inline by default, and
threaded), and the async half (native, and through the thread adapter)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from zc_events import (
    AsyncEventClient,
    Dispatcher,
    EventClient,
    RequestTimeout,
    ThreadedAsyncBackend,
)
from zc_events.backends.memory import AsyncMemoryBackend, MemoryBackend
from zc_events.testing.conformance import AsyncBackendConformance, BackendConformance
from zc_events.testing.handlers import HANDLERS


class TestMemoryConformance(BackendConformance):
    backend_name = "memory"

    @pytest.fixture
    def client(self) -> Iterator[EventClient]:
        backend = MemoryBackend(dispatcher=Dispatcher([HANDLERS]))
        with EventClient(backend) as client:
            yield client

    def test_timeout(self, client: EventClient) -> None:
        # Inline dispatch (the default) cannot interrupt the handler: the overrun is reported
        # as RequestTimeout when it returns.
        with pytest.raises(RequestTimeout, match="ran past the timeout"):
            client.get("conformance.sleep", data={"seconds": 0.3}, timeout=0.05)


class TestMemoryThreadedConformance(BackendConformance):
    backend_name = "memory"

    @pytest.fixture
    def client(self) -> Iterator[EventClient]:
        backend = MemoryBackend(dispatcher=Dispatcher([HANDLERS]), inline=False)
        with EventClient(backend) as client:
            yield client


class TestMemoryAsyncConformance(AsyncBackendConformance):
    backend_name = "memory"

    @pytest.fixture
    async def async_client(self) -> AsyncIterator[AsyncEventClient]:
        backend = AsyncMemoryBackend(dispatcher=Dispatcher([HANDLERS]))
        async with AsyncEventClient(backend) as client:
            yield client


class TestMemoryThreadAdapterConformance(AsyncBackendConformance):
    backend_name = "memory"

    @pytest.fixture
    async def async_client(self) -> AsyncIterator[AsyncEventClient]:
        backend = MemoryBackend(dispatcher=Dispatcher([HANDLERS]), inline=False)
        async with AsyncEventClient(ThreadedAsyncBackend(backend)) as client:
            yield client
