"""The old fleet's DRF services: every outcome exactly as the service's own DRF stack renders it.

The views use djangorestframework-jsonapi's parser, renderer and exception handler for
``application/json``, as the fleet shared them (``shop.views.FleetView``). Each call is made over
zc-events and, for reference, as an HTTP request with Django's test client; the status, the data
and the error lists must be equal — through the memory backend, and through a real
``manage.py zc_events_worker`` on ``rabbitmq_legacy`` called by zc-events' ``rabbitmq_legacy``
client (the old wire).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import zc_events

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
REDIS_URL = "redis://127.0.0.1:6379/0"
#: The worker's process time zone in the legacy test; the project leaves Django's TIME_ZONE at
#: its default, America/Chicago.
WORKER_TZ = "Asia/Tokyo"


def add(x: Any = 1, y: Any = 2, pk: str | None = None, type_: str = "AddView") -> dict[str, Any]:
    resource: dict[str, Any] = {"type": type_, "attributes": {"x": x, "y": y}}
    if pk is not None:
        resource["id"] = pk
    return {"data": resource}


@dataclass(frozen=True)
class Call:
    method: str
    key: str
    data: Any = None
    headers: dict[str, Any] | None = None


CALLS = [
    # the old library's example viewset: every verb, detail routes by pk
    pytest.param(Call("GET", "add_drf", add()), id="list"),
    pytest.param(Call("POST", "add_drf", add(20, 3)), id="create"),
    pytest.param(Call("GET", "add_drf", add(), {"pk": 3}), id="retrieve"),
    pytest.param(Call("PUT", "add_drf", add(pk="3"), {"pk": "3"}), id="update"),
    pytest.param(Call("DELETE", "add_drf", add(10, 20), {"pk": 3}), id="destroy"),
    # methods the routes have no action for: DRF's own 405, through its exception handler
    pytest.param(Call("PUT", "add_drf", add()), id="put-without-pk-405"),
    pytest.param(Call("PATCH", "add_drf", add()), id="patch-without-pk-405"),
    pytest.param(Call("DELETE", "add_drf", add()), id="delete-without-pk-405"),
    pytest.param(Call("POST", "add_drf", add(), {"pk": 3}), id="post-with-pk-405"),
    pytest.param(Call("PATCH", "add_drf", add(pk="3"), {"pk": 3}), id="no-partial-update-405"),
    # the parser, the serializer, authentication
    pytest.param(Call("POST", "add_drf", add("one", None)), id="validation-error"),
    pytest.param(Call("POST", "add_drf", {"x": 1, "y": 2}), id="parse-error"),
    pytest.param(Call("POST", "add_drf", add(type_="Other")), id="conflict-409"),
    pytest.param(Call("PUT", "add_drf", add(pk="4"), {"pk": 3}), id="id-mismatch-409"),
    pytest.param(
        Call("POST", "add_drf", add(), {"content_type": "application/xml"}), id="media-type-415"
    ),
    pytest.param(
        Call("GET", "add_drf", add(), {"authorization": "Token nope"}), id="bad-token-401"
    ),
    # a ModelViewSet: an unknown pk, a required attribute
    pytest.param(Call("GET", "fleet-customers"), id="model-list"),
    pytest.param(Call("GET", "fleet-customers", None, {"pk": 999999}), id="unknown-pk-404"),
    pytest.param(
        Call("POST", "fleet-customers", {"data": {"type": "customers", "attributes": {}}}),
        id="model-validation-error",
    ),
    # an APIView that looks items up by query parameter
    pytest.param(Call("GET", "catalogue", None, {"query_string": "sku=tea"}), id="lookup"),
    pytest.param(
        Call("GET", "catalogue", None, {"query_string": {"sku": ["cake"]}}), id="lookup-dict"
    ),
    pytest.param(Call("GET", "catalogue", None, {"query_string": "?sku="}), id="lookup-400"),
    pytest.param(Call("GET", "catalogue", None, {"query_string": "sku=nope"}), id="lookup-404"),
    pytest.param(Call("POST", "catalogue", {"sku": "pie"}), id="permission-denied-403"),
    pytest.param(Call("PUT", "catalogue", {"sku": "pie"}), id="apiview-405"),
]


def over_http(call: Call) -> tuple[int, Any]:
    """Status and rendered body of the same request made over HTTP (Django's test client)."""
    from django.test import Client

    headers = call.headers or {}
    path = f"/{call.key}/" + (f"{headers['pk']}/" if "pk" in headers else "")
    query = headers.get("query_string") or ""
    if isinstance(query, dict):
        from urllib.parse import urlencode

        query = urlencode(query, doseq=True)
    extra = {"QUERY_STRING": query.lstrip("?")}
    if "authorization" in headers:
        extra["HTTP_AUTHORIZATION"] = headers["authorization"]
    response = Client(HTTP_HOST="shop.internal").generic(
        call.method,
        path,
        b"" if call.data is None else json.dumps(call.data).encode(),
        content_type=headers.get("content_type", "application/json"),
        **extra,
    )
    return response.status_code, json.loads(response.content) if response.content else None


def check(client: zc_events.EventClient, call: Call) -> zc_events.Response:
    """Make ``call`` over zc-events; assert it is what HTTP renders; return the Response."""
    status, body = over_http(call)
    r = getattr(client, call.method.lower())(call.key, data=call.data, headers=call.headers)
    assert r.status == status
    if status >= 400:
        assert (r.has_errors, r.data) == (True, None)
        assert r.errors == body["errors"]  # the same objects, keys and values
    else:
        assert (r.has_errors, r.errors, r.data) == (False, [], body)
    return r


# -- the memory backend ----------------------------------------------------------------------
@pytest.mark.parametrize("call", CALLS)
def test_memory_backend_answers_what_drf_renders(client: zc_events.EventClient, call: Call) -> None:
    check(client, call)


def test_the_old_example_put_without_pk(client: zc_events.EventClient) -> None:
    """The old library's client example: PUT on the viewset without a pk."""
    r = check(client, Call("PUT", "add_drf", add()))
    old = [{"detail": 'Method "PUT" not allowed.', "source": {"pointer": "/data"}, "status": "405"}]
    assert [{k: e[k] for k in ("detail", "source", "status")} for e in r.errors] == old
    assert r.status == 405
    with pytest.raises(zc_events.RemoteError, match='Method "PUT" not allowed.'):
        r.raise_for_errors()


def test_405_goes_through_the_views_whole_stack(client: zc_events.EventClient) -> None:
    """Authentication runs before DRF decides the method: a bad token is a 401, not a 405."""
    r = check(client, Call("PUT", "add_drf", add(), {"authorization": "Token nope"}))
    assert r.status == 401


# -- the old wire, a real worker -------------------------------------------------------------
@dataclass
class LegacyService:
    client: zc_events.EventClient
    worker: Any
    started: datetime
    ready: datetime


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory, manage_worker: Any) -> Iterator[LegacyService]:
    """``manage.py zc_events_worker`` on ``rabbitmq_legacy`` (TZ=Asia/Tokyo), and an old-wire
    client; unique service and exchange names, deleted afterwards."""
    pytest.importorskip("zc_events_rabbitmq", reason="needs zc-events-rabbitmq")
    pytest.importorskip("redis", reason="needs redis-py")
    from zc_events_rabbitmq.testing import delete_broker_objects

    name = f"zc-events-django-test-{uuid.uuid4().hex[:12]}"
    exchange = f"{name}-fanout"
    options = {"url": AMQP_URL, "redis_url": REDIS_URL, "events_exchange": exchange}
    env = {
        "SERVICE_NAME": name,
        "ZC_EVENTS_BACKEND": "rabbitmq_legacy",
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps(options),
        "TZ": WORKER_TZ,
    }
    client = zc_events.EventClient(
        "rabbitmq_legacy", settings=zc_events.Settings({"SERVICE_NAME": name}), **options
    )
    tmp = tmp_path_factory.mktemp("legacy")
    started = datetime.now(UTC)
    ready = lambda: client.get("catalogue", headers={"query_string": "sku=tea"}, timeout=2)  # noqa: E731
    try:
        with manage_worker(tmp, env, ready) as worker:
            yield LegacyService(client, worker, started, datetime.now(UTC))
    finally:
        client.close()
        delete_broker_objects(
            [f"{name}-events", f"{name}.dead"], [exchange, f"{exchange}.dead"], url=AMQP_URL
        )


@pytest.mark.rabbitmq
@pytest.mark.redis
@pytest.mark.parametrize("call", CALLS)
def test_legacy_worker_answers_what_drf_renders(legacy: LegacyService, call: Call) -> None:
    check(legacy.client, call)


@pytest.mark.rabbitmq
@pytest.mark.redis
def test_worker_log_timestamps_follow_the_process_time_zone(legacy: LegacyService) -> None:
    """Django moved TZ to its TIME_ZONE (America/Chicago by default); the log keeps Tokyo time."""
    line = next(line for line in legacy.worker.output.splitlines() if " serving " in line)
    stamp = datetime.strptime(line[:19], "%Y-%m-%d %H:%M:%S")
    tokyo = ZoneInfo(WORKER_TZ)
    earliest = legacy.started.astimezone(tokyo).replace(tzinfo=None, microsecond=0)
    latest = legacy.ready.astimezone(tokyo).replace(tzinfo=None)
    assert earliest <= stamp <= latest, line
