"""The test project served by ``manage.py zc_events_worker`` over a real RabbitMQ.

The worker is a subprocess with its own sqlite file; every exchange and queue has a unique name
and is deleted afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import zc_events
from zc_events.jsonapi import Resource, wrap

pytestmark = pytest.mark.rabbitmq
pytest.importorskip("zc_events_rabbitmq", reason="needs the rabbitmq backend (zc-events-rabbitmq)")

PROJECT = Path(__file__).parent / "project"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[zc_events.EventClient]:
    """A client talking to ``manage.py zc_events_worker`` (rabbitmq backend) over RabbitMQ."""
    name = f"zc-events-django-test-{uuid.uuid4().hex[:12]}"
    options = {"url": AMQP_URL, "exchange": name, "concurrency": 1}
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "zcdjango_test.settings",
        "ZCDJANGO_TEST_DB": str(tmp_path / "db.sqlite3"),
        "SERVICE_NAME": name,
        "ZC_EVENTS_BACKEND": "rabbitmq",
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps(options),
        "PYTHONPATH": os.pathsep.join([str(PROJECT), os.environ.get("PYTHONPATH", "")]),
    }
    manage = [sys.executable, str(PROJECT / "manage.py")]
    subprocess.run([*manage, "migrate", "--run-syncdb", "-v0"], env=env, check=True, timeout=120)
    log = (tmp_path / "worker.log").open("w+")
    worker = subprocess.Popen([*manage, "zc_events_worker"], env=env, stdout=log, stderr=log)
    client = None
    try:
        client = zc_events.EventClient(
            "rabbitmq", settings=zc_events.Settings({"SERVICE_NAME": name}), timeout=10, **options
        )
        deadline = time.monotonic() + 60
        while True:  # until the worker has bound its queue
            try:
                client.get("search", timeout=5)
                break
            except (zc_events.NoRouteError, zc_events.RequestTimeout):
                if worker.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"the worker did not start serving:\n{log.read()}")
                time.sleep(0.2)
        yield client
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0  # SIGTERM: finish in-flight work, exit 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        if client is not None:
            client.close()
        log.close()
        from zc_events_rabbitmq.testing import delete_broker_objects

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
    assert (invalid.status, invalid.errors[0]["type"]) == (400, "ValidationError")
    assert invalid.errors[0]["detail"]["quantity"] == ["at most 100 per order"]

    search = served.get("search", headers={"query_string": "q=tea&tag=a&tag=b", "user_id": 1})
    assert (search.data["q"], search.data["tags"], search.data["user"]) == ("tea", ["a", "b"], None)
    denied = served.get("secure", headers={"roles": ["admin"]})
    assert (denied.status, denied.errors[0]["type"]) == (401, "NotAuthenticated")

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
