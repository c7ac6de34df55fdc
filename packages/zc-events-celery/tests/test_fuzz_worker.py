"""1,000 hostile bodies straight into a real Celery worker's events queue, then a valid call that
must still be answered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pika
import pytest

from zc_events.testing import fuzz_bodies

pytestmark = pytest.mark.celery

COUNT = 1000
BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def test_a_thousand_fuzzed_bodies_then_a_valid_call(make_service: Callable[[], Any]) -> None:
    service = make_service()
    with service.worker(concurrency=2) as worker, service.client() as client:
        assert client.get("conformance.echo", data=1, timeout=60).ok  # declared and serving
        conn = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
        try:
            channel = conn.channel()
            channel.confirm_delivery()
            for n, body in enumerate(fuzz_bodies(COUNT, seed=5)):
                headers = {"task": "microservice.event", "id": f"t-{n}"} if n % 4 else None
                channel.basic_publish(
                    service.exchange,
                    "",
                    body,
                    pika.BasicProperties(
                        content_type="application/json",
                        content_encoding="utf-8",
                        headers=headers,
                        priority=n % 10,
                    ),
                )
        finally:
            conn.close()
        try:
            response = client.get("conformance.add", data={"x": 1, "y": 2}, timeout=120)
        except Exception as exc:
            raise AssertionError(f"{exc}; worker output:\n{worker.output[-6000:]}") from exc
        assert response.data == {"answer": 3}, worker.output[-3000:]
        assert worker.process.poll() is None, worker.output[-3000:]
