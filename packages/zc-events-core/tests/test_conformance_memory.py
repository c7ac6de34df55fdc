"""The conformance suite against the embedded memory backend, threaded and inline."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from zc_events import Dispatcher, EventClient
from zc_events.backends.memory import MemoryBackend
from zc_events.testing.conformance import BackendConformance
from zc_events.testing.handlers import HANDLERS


class TestMemoryConformance(BackendConformance):
    backend_name = "memory"

    @pytest.fixture
    def client(self) -> Iterator[EventClient]:
        backend = MemoryBackend(dispatcher=Dispatcher([HANDLERS]))
        with EventClient(backend) as client:
            yield client


class TestMemoryInlineConformance(BackendConformance):
    backend_name = "memory"

    @pytest.fixture
    def client(self) -> Iterator[EventClient]:
        backend = MemoryBackend(dispatcher=Dispatcher([HANDLERS]), inline=True)
        with EventClient(backend) as client:
            yield client

    def test_timeout(self, client: EventClient) -> None:
        # Inline dispatch cannot interrupt the handler: the timeout is reported when it returns.
        with pytest.raises(Exception) as info:
            client.get("conformance.sleep", data={"seconds": 0.3}, timeout=0.05)
        assert type(info.value).__name__ == "RequestTimeout"
