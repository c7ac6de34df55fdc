"""The core conformance suite against the real broker, for both backends.

Both classes talk to the same worker subprocess (``served``): one ``zc-events worker --backend
rabbitmq`` with ``legacy=True`` serves the native and the legacy protocol at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from zc_events import AsyncEventClient, EventClient, RequestTimeout, ThreadedAsyncBackend
from zc_events.testing.conformance import AsyncBackendConformance, BackendConformance


@pytest.mark.rabbitmq
@pytest.mark.redis
class TestRabbitMQ(BackendConformance):
    backend_name = "rabbitmq"

    @pytest.fixture
    def client(self, served: Any) -> Iterator[EventClient]:
        with served.client() as client:
            yield client


@pytest.mark.rabbitmq
@pytest.mark.redis
class TestRabbitMQLegacy(BackendConformance):
    backend_name = "rabbitmq_legacy"
    unknown_key_error = RequestTimeout

    @pytest.fixture
    def client(self, served: Any) -> Iterator[EventClient]:
        with served.client("rabbitmq_legacy") as client:
            yield client


@pytest.mark.rabbitmq
@pytest.mark.redis
class TestRabbitMQAsync(AsyncBackendConformance):
    """The async half on the native asyncio backend (aiormq)."""

    backend_name = "rabbitmq"

    @pytest.fixture
    async def async_client(self, served: Any) -> AsyncIterator[AsyncEventClient]:
        async with served.async_client() as client:
            assert not isinstance(client.backend, ThreadedAsyncBackend)
            yield client


@pytest.mark.rabbitmq
@pytest.mark.redis
class TestRabbitMQLegacyAsync(AsyncBackendConformance):
    """The async half on the native asyncio legacy backend (aiormq, redis.asyncio)."""

    backend_name = "rabbitmq_legacy"
    unknown_key_error = RequestTimeout

    @pytest.fixture
    async def async_client(self, served: Any) -> AsyncIterator[AsyncEventClient]:
        async with served.async_client("rabbitmq_legacy") as client:
            assert not isinstance(client.backend, ThreadedAsyncBackend)
            yield client
