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


def test_a_lone_get_publishes_on_the_reply_connection(served: Any, redis_client: Any) -> None:
    """One caller: its request and its first read of the reply list share one connection and
    one round trip, so the client makes no second connection."""
    from zc_events_redis._common import PUBLISH_SCRIPT

    redis_client.script_load(PUBLISH_SCRIPT)  # else the first call loads it via the pool
    from zc_events import EventClient

    name = f"zc-events-test-lone-{uuid.uuid4().hex[:10]}"
    with EventClient("redis", **served.options(client_name=name)) as client:
        for i in range(5):
            assert client.get("conformance.add", data={"x": i, "y": 1}).data == {"answer": i + 1}
        names = [str(c.get("name", "")) for c in redis_client.client_list()]
        assert [n.split(":")[1] for n in names if n.startswith(name)] == ["replies"]


def test_a_get_after_redis_lost_its_scripts(served: Any, redis_client: Any) -> None:
    """NOSCRIPT on the one-round-trip path: the call falls back to the pool, which loads the
    script again, and the read it had started ends at once."""
    with served.client() as client:
        assert client.get("conformance.add", data={"x": 1, "y": 1}).data == {"answer": 2}
        redis_client.script_flush()
        started = time.monotonic()
        assert client.get("conformance.add", data={"x": 2, "y": 1}, timeout=30).data == {
            "answer": 3
        }
        assert time.monotonic() - started < 0.9  # not after the started read's 1 s
        assert client.get("conformance.add", data={"x": 3, "y": 1}).data == {"answer": 4}


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


def test_asyncio_run_ends_when_the_async_client_was_not_closed(served: Any) -> None:
    """asyncio.run cancels the reply reader of a client nobody closed: the reader must end
    (redis.asyncio can swallow a cancellation in a blocking read, and asyncio.run then hung)."""
    import json
    import subprocess
    import sys

    script = """
import asyncio, json, sys
from zc_events import AsyncEventClient

async def main():
    client = AsyncEventClient("redis", **json.loads(sys.argv[1]))
    assert (await client.get("conformance.add", data={"x": 1, "y": 1})).data == {"answer": 2}
    raise SystemExit(7)  # leaves without aclose()

asyncio.run(main())
"""
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps(served.options())], timeout=30, check=False
    )
    assert proc.returncode == 7
