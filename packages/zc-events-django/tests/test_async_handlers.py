"""``async def`` handlers served by ``manage.py zc_events_worker`` over a real RabbitMQ, next to
the project's DRF views (which keep running on threads).

The worker is a subprocess with its own sqlite file; every exchange and queue has a unique name
and is deleted afterwards.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import zc_events

pytestmark = pytest.mark.rabbitmq
pytest.importorskip("zc_events_rabbitmq", reason="needs the rabbitmq backend (zc-events-rabbitmq)")
from zc_events_rabbitmq.testing import delete_broker_objects  # noqa: E402

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"

ASYNC_HANDLERS = """
import asyncio

from asgiref.sync import sync_to_async
from django.contrib.auth.models import User

import zc_events


@zc_events.handler("async-double")
async def double(request):
    await asyncio.sleep(0.01)
    return {"double": request.data * 2}


@zc_events.handler("async-users")
async def users(request):
    # The ORM is synchronous: an async handler reaches it through sync_to_async.
    return {"users": await sync_to_async(User.objects.count)()}
"""


@pytest.fixture
def served(tmp_path: Path, manage_worker: Any) -> Iterator[zc_events.AsyncEventClient]:
    """An AsyncEventClient talking to ``manage.py zc_events_worker async_handlers``."""
    name = f"zc-events-django-async-{uuid.uuid4().hex[:12]}"
    options = {"url": AMQP_URL, "exchange": name}
    (tmp_path / "async_handlers.py").write_text(ASYNC_HANDLERS)
    env = {
        "SERVICE_NAME": name,
        "ZC_EVENTS_BACKEND": "rabbitmq",
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps(options),
    }
    settings = zc_events.Settings({"SERVICE_NAME": name})
    probe = zc_events.EventClient("rabbitmq", settings=settings, timeout=5, **options)
    try:
        with manage_worker(
            tmp_path,
            env,
            lambda: probe.get("async-double", data=1, timeout=5),
            modules=["async_handlers"],
        ):
            yield zc_events.AsyncEventClient("rabbitmq", settings=settings, timeout=10, **options)
    finally:
        probe.close()
        delete_broker_objects([name, f"{name}.dead"], [name, f"{name}.dead"], url=AMQP_URL)


async def test_async_handlers_and_drf_views_from_one_worker(
    served: zc_events.AsyncEventClient,
) -> None:
    async with served as client:
        assert (await client.get("async-double", data=21)).data == {"double": 42}
        assert (await client.get("async-users")).data == {"users": 0}
        created = await client.post("orders", data={"item": "tea", "quantity": 2})
        assert (created.status, created.data["item"]) == (201, "tea")
        assert [o["item"] for o in (await client.get("orders")).data] == ["tea"]
