"""A 20 MB round trip through the RabbitMQ backend with the claim check on, to a real worker
process (``zc-events worker``) configured by its environment, as a deployed service would be."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any

import pytest

from zc_events import (
    Envelope,
    EventClient,
    Middleware,
    Settings,
)
from zc_events.testing import run_worker, wait_until_served
from zc_events_aws import S3ClaimCheck

pytestmark = [pytest.mark.rabbitmq, pytest.mark.s3]

KeysIn = Callable[[str], list[str]]
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
MB20 = 20 * 1024 * 1024


class WireSize(Middleware):
    def __init__(self) -> None:
        self.sizes: list[int] = []

    def outgoing_request(self, envelope: Envelope) -> Envelope:
        self.sizes.append(len(envelope.encode()))
        return envelope


def _rabbitmq_backend() -> type:
    try:
        [ep] = entry_points(group="zc_events.backends", name="rabbitmq")
        cls: type = ep.load()
    except Exception as exc:  # zc-events-rabbitmq not installed, or failed to import
        if os.environ.get("ZC_EVENTS_REQUIRE_SERVICES") == "1":
            raise
        pytest.skip(f"the 'rabbitmq' backend is not available: {exc}")
    return cls


@pytest.fixture
def rabbitmq_service(aws: Any, bucket: str) -> Iterator[dict[str, Any]]:
    """A worker subprocess serving the conformance handlers on a unique exchange and queue, with
    the claim check configured through its environment; yields the settings to call it with."""
    _rabbitmq_backend()
    suffix = uuid.uuid4().hex[:10]
    exchange, queue = f"zc-events-aws-test-{suffix}", f"zc-events-aws-test-{suffix}"
    options = {"url": AMQP_URL, "exchange": exchange, "queue": queue}
    settings = {
        "SERVICE_NAME": queue,
        "ZC_EVENTS_BACKEND": "rabbitmq",
        "ZC_EVENTS_BACKEND_OPTIONS": options,
        "ZC_EVENTS_MIDDLEWARE": ["s3_claim_check"],
        "ZC_EVENTS_MIDDLEWARE_OPTIONS": {"s3_claim_check": {"bucket": bucket}},
        # the claim-check objects of this test are 20 MB, over the 16 MiB default
        "ZC_EVENTS_MAX_MESSAGE_BYTES": str(64 * 1024 * 1024),
    }
    env = {
        **aws.env(),
        **{k: v if isinstance(v, str) else json.dumps(v) for k, v in settings.items()},
    }
    try:
        with run_worker(["zc_events.testing.handlers"], env=env):
            yield settings
    finally:
        from zc_events_rabbitmq.testing import delete_broker_objects

        delete_broker_objects(
            [queue, f"{queue}.dead"], [exchange, f"{exchange}.dead"], url=AMQP_URL
        )


def test_20mb_round_trip_through_rabbitmq(
    rabbitmq_service: dict[str, Any], bucket: str, keys_in: KeysIn
) -> None:
    wire = WireSize()
    settings = Settings(rabbitmq_service)
    with EventClient(
        settings=settings, middleware=[S3ClaimCheck(bucket=bucket, settings=settings), wire]
    ) as client:
        wait_until_served(client, "conformance.add", data={"x": 1, "y": 1})
        blob = "€" * (MB20 // 3)  # 20 MB of UTF-8
        response = client.post("conformance.echo", data={"blob": blob}, timeout=120)
        assert response.has_errors is False, response.errors
        assert response.data["data"]["blob"] == blob
        assert response.data["key"] == "conformance.echo"
        assert wire.sizes[-1] < 1000  # the broker carried a reference, not 20 MB

        token = str(uuid.uuid4())
        client.post_no_wait("conformance.record", data={"token": token, "blob": "n" * MB20})
        deadline = time.monotonic() + 60
        while not (records := client.get("conformance.recorded", data={"token": token}).data):
            assert time.monotonic() < deadline, "the no-wait 20 MB message never arrived"
            time.sleep(0.1)
        assert records[0]["data"]["blob"] == "n" * MB20  # recorded, then echoed back via S3
    deadline = time.monotonic() + 10
    while keys_in(bucket) and time.monotonic() < deadline:  # the worker deletes after handling
        time.sleep(0.1)
    assert keys_in(bucket) == []
