"""The test project served by ``manage.py zc_events_worker`` over a real RabbitMQ.

The worker is a subprocess with its own sqlite file; every exchange and queue has a unique name
and is deleted afterwards.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import zc_events
from zc_events.jsonapi import Resource, wrap

pytestmark = pytest.mark.rabbitmq
pytest.importorskip("zc_events_rabbitmq", reason="needs the rabbitmq backend (zc-events-rabbitmq)")
from zc_events_rabbitmq.testing import delete_broker_objects  # noqa: E402

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@pytest.fixture
def served(tmp_path: Path, manage_worker: Any) -> Iterator[zc_events.EventClient]:
    """A client talking to ``manage.py zc_events_worker`` (rabbitmq backend) over RabbitMQ."""
    name = f"zc-events-django-test-{uuid.uuid4().hex[:12]}"
    options = {"url": AMQP_URL, "exchange": name, "concurrency": 1}
    env = {
        "SERVICE_NAME": name,
        "ZC_EVENTS_BACKEND": "rabbitmq",
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps(options),
    }
    client = zc_events.EventClient(
        "rabbitmq", settings=zc_events.Settings({"SERVICE_NAME": name}), timeout=10, **options
    )
    try:
        with manage_worker(tmp_path, env, lambda: client.get("search", timeout=5)):
            yield client
    finally:
        client.close()
        delete_broker_objects([name, f"{name}.dead"], [name, f"{name}.dead"], url=AMQP_URL)


def test_drf_views_over_rabbitmq(served: zc_events.EventClient) -> None:
    created = served.post("orders", data={"item": "tea", "quantity": 2})
    assert (created.status, created.data["item"]) == (201, "tea")
    pk = created.data["id"]
    assert [o["item"] for o in served.get("orders").data] == ["tea"]
    assert served.patch("orders", data={"status": "paid"}, headers={"pk": pk}).data["status"] == (
        "paid"
    )

    invalid = served.post("orders", data={"quantity": 1000})
    assert (invalid.status, invalid.errors[0]["quantity"]) == (400, ["at most 100 per order"])

    search = served.get("search", headers={"query_string": "q=tea&tag=a&tag=b", "user_id": 1})
    assert (search.data["q"], search.data["tags"], search.data["user"]) == ("tea", ["a", "b"], None)
    denied = served.get("secure", headers={"roles": ["admin"]})
    assert (denied.status, denied.errors) == (
        401,
        [{"detail": "Authentication credentials were not provided."}],
    )

    assert served.post("echo", data={"x": "é"}).data["data"] == {"x": "é"}
    doc = {"data": {"type": "orders", "attributes": {"item": "cake", "deliveryNote": "door"}}}
    cake = served.post("jsonapi-orders", data=doc)
    order = wrap(served.get("jsonapi-orders", headers={"pk": cake.data["data"]["id"]}))
    assert isinstance(order, Resource) and order.delivery_note == "door"

    served.delete_no_wait("orders", headers={"pk": pk})
    deadline = time.monotonic() + 10
    while served.get("orders", headers={"pk": pk}).status != 404:
        assert time.monotonic() < deadline, "the no-wait DELETE was not handled"
        time.sleep(0.1)


def test_a_refused_login_ends_the_worker_with_one_line_and_status_2(tmp_path: Path) -> None:
    from zc_events.testing import run_worker

    project = Path(__file__).parent / "project"
    env = {
        "DJANGO_SETTINGS_MODULE": "zcdjango_test.settings",
        "ZCDJANGO_TEST_DB": str(tmp_path / "db.sqlite3"),
        "SERVICE_NAME": f"zc-events-django-test-{uuid.uuid4().hex[:12]}",
        "ZC_EVENTS_BACKEND": "rabbitmq",
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"url": "amqp://guest:nope@127.0.0.1:5672/%2F"}),
    }
    manage = [sys.executable, str(project / "manage.py"), "zc_events_worker"]
    with run_worker(argv=manage, env=env, pythonpath=[project], ready=None) as worker:
        assert worker.wait(60) == 2
    assert worker.lines[-1] == (
        "CommandError: cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:5672/%2F: the "
        "broker refused the login (403 ACCESS_REFUSED - Login was refused using authentication "
        "mechanism PLAIN): check the user name and password in the URL"
    )
    assert "Traceback" not in worker.output
    assert "nope" not in worker.output
