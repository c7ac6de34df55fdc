"""The backend conformance suite against a real `celery worker` on RabbitMQ + Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from zc_events import AsyncEventClient, EventClient, RequestTimeout, ThreadedAsyncBackend
from zc_events.testing.conformance import AsyncBackendConformance, BackendConformance

pytestmark = pytest.mark.celery


class TestCeleryConformance(BackendConformance):
    backend_name = "celery"
    unknown_key_error = RequestTimeout

    @pytest.fixture
    def client(self, service: Any, session_worker: Any) -> Iterator[EventClient]:
        with service.client(timeout=15) as client:
            yield client


class TestCeleryAsyncConformance(AsyncBackendConformance):
    """The async half, through the thread adapter (celery has no native asyncio backend)."""

    backend_name = "celery"
    unknown_key_error = RequestTimeout

    @pytest.fixture
    async def async_client(
        self, service: Any, session_worker: Any
    ) -> AsyncIterator[AsyncEventClient]:
        async with service.async_client(timeout=15) as client:
            assert isinstance(client.backend, ThreadedAsyncBackend)
            yield client
