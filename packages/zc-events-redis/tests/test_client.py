"""The client's reply list: one reader at a time, the role handed on; nothing left behind."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from zc_events import RequestTimeout

pytestmark = pytest.mark.redis


def test_a_call_that_times_out_hands_reading_to_the_others(served: Any) -> None:
    with served.client() as client:
        client.get("conformance.echo")  # the reply list exists; nobody is reading
        results: dict[str, Any] = {}

        def slow() -> None:
            results["slow"] = client.get("conformance.sleep", data={"seconds": 1.5}, timeout=20)

        def impatient() -> None:
            try:
                client.get("conformance.sleep", data={"seconds": 3}, timeout=0.5)
            except RequestTimeout as exc:
                results["impatient"] = exc

        # the impatient call starts first, so it is the one reading when it gives up
        threads = [threading.Thread(target=impatient), threading.Thread(target=slow)]
        threads[0].start()
        time.sleep(0.2)
        threads[1].start()
        for t in threads:
            t.join(30)
        assert isinstance(results["impatient"], RequestTimeout)
        assert results["slow"].has_errors is False


def test_close_deletes_the_reply_list(served: Any, redis_client: Any) -> None:
    client = served.client()
    client.get("conformance.echo")
    name = client.backend._reply_list.name
    redis_client.rpush(name, b"left over")
    client.close()
    assert redis_client.exists(name) == 0


async def test_async_client_recovers_when_its_connections_are_killed(
    served: Any, kill_connections: Any, redis_client: Any
) -> None:
    from zc_events import AsyncEventClient

    name = f"zc-events-test-async-{uuid.uuid4().hex[:10]}"
    async with AsyncEventClient("redis", **served.options(client_name=name)) as client:
        assert (await client.get("conformance.add", data={"x": 1, "y": 2})).data == {"answer": 3}
        assert kill_connections(name) == 2  # the publishing and the reply-reading connection
        response = await client.get("conformance.add", data={"x": 2, "y": 2}, timeout=30)
        assert response.data == {"answer": 4}
    assert [k for k in redis_client.scan_iter(match=f"{served.prefix}:reply:*")] == []


async def test_async_call_cancelled_mid_publish_is_cancelled(served: Any) -> None:
    """A cancellation that reaches redis.asyncio mid-command must end the call: redis-py can
    swallow it and complete the command, and the call then carried on to its reply."""
    import asyncio

    from zc_events import AsyncEventClient

    async with AsyncEventClient("redis", **served.options()) as client:
        assert (await client.get("conformance.add", data={"x": 1, "y": 1})).data == {"answer": 2}
        completed = []
        for i in range(60):
            call = asyncio.create_task(client.get("conformance.add", data={"x": i, "y": 0}))
            for _ in range(i % 12):  # cancel at each step of the publish round trip
                await asyncio.sleep(0)
            if not call.cancel():
                continue  # it had already finished
            await asyncio.wait([call])
            if not call.cancelled():
                completed.append((i, call.exception() or call.result().data))
        assert completed == [], "cancelled calls that went on to complete"
        assert (await client.get("conformance.add", data={"x": 5, "y": 5})).data == {"answer": 10}
