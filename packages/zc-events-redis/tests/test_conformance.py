"""The core conformance suite (sync and asyncio halves) against the real Redis and a
``zc-events worker`` subprocess."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from zc_events import AsyncEventClient, EventClient
from zc_events.testing.conformance import AsyncBackendConformance, BackendConformance


@pytest.mark.redis
class TestRedis(BackendConformance):
    backend_name = "redis"

    @pytest.fixture
    def client(self, served: Any) -> Iterator[EventClient]:
        with served.client() as client:
            yield client


@pytest.mark.redis
class TestRedisAsync(AsyncBackendConformance):
    backend_name = "redis"

    @pytest.fixture
    async def async_client(self, served: Any) -> AsyncIterator[AsyncEventClient]:
        async with AsyncEventClient("redis", **served.options()) as client:
            assert type(client.backend).__name__ == "AsyncRedisBackend"  # native, not threads
            yield client
