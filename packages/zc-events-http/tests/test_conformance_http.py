"""The conformance suite over HTTP, against a real ``zc-events worker --backend http``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from zc_events import EventClient
from zc_events.testing.conformance import BackendConformance


class TestHttpConformance(BackendConformance):
    backend_name = "http"

    @pytest.fixture
    def client(self, http_worker) -> Iterator[EventClient]:  # type: ignore[no-untyped-def]
        with EventClient("http", routes={"*": http_worker.url}) as client:
            yield client
