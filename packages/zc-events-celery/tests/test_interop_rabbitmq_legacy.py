"""Interop with zc-events-rabbitmq's legacy transport, both ways, on the zc_events 0.4 wire.

A Celery-backend client calls a `zc-events worker --backend rabbitmq_legacy` service, and a
`rabbitmq_legacy` client calls a Celery worker set up by `install(app)`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from zc_events import EventClient, RequestTimeout
from zc_events.testing import run_worker, wait_until_served
from zc_events.testing.conformance import wait_for_records
from zc_events_celery.testing import delete_amqp_entities

pytest.importorskip("zc_events_rabbitmq")

pytestmark = pytest.mark.celery

BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
REDIS_URL = "redis://127.0.0.1:6379/0"


def check_calls(client: EventClient) -> None:
    """What a caller sees from the other side: replies, remote errors, status and no-wait."""
    assert client.get("conformance.add", data={"x": 1, "y": 2}).data == {"answer": 3}
    echoed = client.put("conformance.echo", data={"é": "/"}, headers={"pk": "7"}).data
    assert (echoed["method"], echoed["data"], echoed["headers"]["pk"]) == ("PUT", {"é": "/"}, "7")
    failed = client.get("conformance.add", data={"x": 1})
    assert (failed.has_errors, failed.errors[0]["type"], failed.errors[0]["message"]) == (
        True,
        "KeyError",
        "'y'",
    )
    created = client.post("conformance.status", data={"id": 7})
    assert (created.data, created.status) == ({"id": 7}, 201)
    token = str(uuid.uuid4())
    client.delete_no_wait("conformance.record", data={"token": token})
    assert wait_for_records(client, token) == [{"method": "DELETE", "data": {"token": token}}]
    with pytest.raises(RequestTimeout):
        client.get(f"conformance.nobody-{uuid.uuid4()}", timeout=0.5)


@pytest.fixture
def legacy_service() -> Iterator[str]:
    """A `zc-events worker --backend rabbitmq_legacy` service; yields its events exchange."""
    tag = uuid.uuid4().hex[:10]
    service, exchange = f"zc-events-test-legacy-{tag}", f"zc-events-test-legacy-{tag}"
    env = {
        "ZC_EVENTS_BACKEND": "rabbitmq_legacy",
        "SERVICE_NAME": service,
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps(
            {"events_exchange": exchange, "redis_url": REDIS_URL}
        ),
    }
    try:
        with run_worker(["zc_events.testing.handlers"], env=env):
            yield exchange
    finally:
        delete_amqp_entities(
            BROKER_URL,
            queues=[f"{service}-events", f"{service}.dead"],
            exchanges=[exchange, f"{exchange}.dead"],
        )


def test_celery_client_calls_rabbitmq_legacy_worker(legacy_service: str) -> None:
    with EventClient(
        "celery", url=BROKER_URL, redis_url=REDIS_URL, events_exchange=legacy_service, timeout=10
    ) as client:
        wait_until_served(client, "conformance.add", data={"x": 0, "y": 0})
        check_calls(client)


def test_rabbitmq_legacy_client_calls_celery_worker(service: Any, session_worker: Any) -> None:
    with EventClient(
        "rabbitmq_legacy",
        url=BROKER_URL,
        redis_url=REDIS_URL,
        events_exchange=service.exchange,
        timeout=10,
    ) as client:
        check_calls(client)
