"""The core conformance suite against the real Redis and a ``zc-events worker`` subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from zc_events import EventClient
from zc_events.testing.conformance import BackendConformance


@pytest.mark.redis
class TestRedis(BackendConformance):
    backend_name = "redis"

    @pytest.fixture
    def client(self, served: Any) -> Iterator[EventClient]:
        with served.client() as client:
            yield client
