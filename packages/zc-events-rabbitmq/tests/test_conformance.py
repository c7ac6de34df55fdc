"""The core conformance suite against the real broker, for both backends.

The sync classes talk to one worker subprocess (``served``), the async ones to another
(``served_async``): each a ``zc-events worker --backend rabbitmq`` with ``legacy=True``, serving
the native and the legacy protocol at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from zc_events import AsyncEventClient, EventClient, RequestTimeout
from zc_events.testing.conformance import AsyncBackendConformance, BackendConformance
from zc_events_rabbitmq import AsyncLegacyRabbitMQBackend, AsyncRabbitMQBackend


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
    """The native asyncio backend (aiormq) against the same worker."""

    backend_name = "rabbitmq"

    @pytest.fixture
    async def async_client(self, served_async: Any) -> AsyncIterator[AsyncEventClient]:
        async with served_async.async_client() as client:
            assert isinstance(client.backend, AsyncRabbitMQBackend)
            yield client


@pytest.mark.rabbitmq
@pytest.mark.redis
class TestRabbitMQLegacyAsync(AsyncBackendConformance):
    """The asyncio legacy backend (aiormq + redis.asyncio) against the same worker."""

    backend_name = "rabbitmq_legacy"
    unknown_key_error = RequestTimeout

    @pytest.fixture
    async def async_client(self, served_async: Any) -> AsyncIterator[AsyncEventClient]:
        async with served_async.async_client("rabbitmq_legacy") as client:
            assert isinstance(client.backend, AsyncLegacyRabbitMQBackend)
            yield client
