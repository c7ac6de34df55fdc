"""The backend conformance suite against a real `celery worker` on RabbitMQ + Redis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from zc_events import EventClient, RequestTimeout
from zc_events.testing.conformance import BackendConformance

pytestmark = pytest.mark.celery


class TestCeleryConformance(BackendConformance):
    backend_name = "celery"
    unknown_key_error = RequestTimeout

    @pytest.fixture
    def client(self, service: Any, session_worker: Any) -> Iterator[EventClient]:
        with service.client(timeout=15) as client:
            yield client
