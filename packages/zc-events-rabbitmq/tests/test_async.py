"""The asyncio side: async handlers served concurrently by the worker, the asyncio client's
connection handling, and what happens without aiormq."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from typing import Any

import pytest

from zc_events import (
    AsyncEventClient,
    NoRouteError,
    PublishError,
    Response,
    Settings,
    ThreadedAsyncBackend,
    create_async_backend,
)
from zc_events.testing.conformance import async_wait_for_records

MODULES = ("async_handlers",)

pytestmark = [pytest.mark.rabbitmq]


async def test_one_worker_thread_serves_100_async_requests_at_once(service: Any) -> None:
    # One consumer thread, prefetch 100: the 100 calls are inside the handler together only if
    # the worker does not wait for one to finish before it starts the next.
    service.start(MODULES, concurrency=1, prefetch=100)
    async with service.async_client() as client:
        await _ready(client)
        token = uuid.uuid4().hex
        started = time.monotonic()
        responses = await asyncio.gather(
            *(
                client.get(
                    "async.gate", data={"token": token, "together": 100, "wait": 10}, timeout=30
                )
                for _ in range(100)
            )
        )
        elapsed = time.monotonic() - started
    assert [r.data for r in responses] == [{"together": True}] * 100, responses[0].data
    print(f"100 concurrent async requests in {elapsed:.3f} s")


async def test_async_and_sync_handlers_side_by_side(service: Any) -> None:
    service.start(MODULES, concurrency=2, prefetch=20)
    async with service.async_client() as client:
        await _ready(client)
        slow = asyncio.create_task(client.get("async.sleep", data={"seconds": 1}, timeout=30))
        adds = await asyncio.gather(
            *(client.get("sync.add", data={"x": i, "y": 1}) for i in range(50))
        )
        assert [r.data for r in adds] == [{"answer": i + 1} for i in range(50)]
        assert (await slow).data == {"slept": 1}
        failed = await client.get("async.fail")
        assert failed.has_errors and failed.errors[0]["type"] == "ValueError"


def test_sigterm_waits_for_async_handlers_in_flight(service: Any) -> None:
    worker = service.start(MODULES, concurrency=1, prefetch=10)

    async def main() -> list[Any]:
        async with service.async_client() as client:
            await _ready(client)
            calls = [
                asyncio.create_task(client.get("async.sleep", data={"seconds": 3}, timeout=30))
                for _ in range(5)
            ]
            # The handlers are running by then (a message still unhandled at SIGTERM is handed
            # back to the broker): a wide margin, for a loaded machine.
            await asyncio.sleep(1.5)
            assert await asyncio.to_thread(worker.terminate) == 0
            return await asyncio.gather(*calls)

    responses = asyncio.run(main())
    assert [r.data for r in responses] == [{"slept": 3}] * 5
    assert "stopped consuming" in worker.output


async def test_client_reconnects_after_the_broker_closes_its_connection(
    service: Any, broker: Any
) -> None:
    service.start(MODULES)
    async with service.async_client() as client:
        await _ready(client)
        closed = await asyncio.to_thread(
            broker.close_connections, f"{service.connection_name} client"
        )
        assert closed == 1
        for _ in range(50):  # the close reaches the client within a round trip
            if not client.backend._link.usable:
                break
            await asyncio.sleep(0.05)
        response = await client.get("sync.add", data={"x": 2, "y": 2})
        assert response.data == {"answer": 4}


async def test_calls_written_together_each_get_their_own_outcome(service: Any) -> None:
    # The publishes of one loop tick leave in one write: the broker's returns (unknown keys)
    # and replies must still reach exactly the call they belong to.
    service.start(("zc_events.testing.handlers",))
    async with service.async_client() as client:
        await _ready_add(client)
        nobody = f"conformance.nobody-{uuid.uuid4()}"
        results = await asyncio.gather(
            *(
                client.get(nobody, data={})
                if i % 7 == 3
                else client.get("conformance.add", data={"x": i, "y": 1})
                for i in range(60)
            ),
            return_exceptions=True,
        )
    for i, result in enumerate(results):
        if i % 7 == 3:
            assert isinstance(result, NoRouteError), (i, result)
            assert nobody in str(result)
        else:
            assert isinstance(result, Response) and result.data == {"answer": i + 1}, (i, result)


async def test_a_batch_names_exactly_the_messages_the_broker_returned(service: Any) -> None:
    service.start(("zc_events.testing.handlers",))
    async with service.async_client() as client:
        await _ready_add(client)
        token = uuid.uuid4().hex
        nobody = f"conformance.nobody-{uuid.uuid4()}"
        unroutable: list[str] = []
        with pytest.raises(PublishError) as info:
            async with client.batch() as batch:
                for i in range(40):
                    if i % 9 == 4:
                        unroutable.append(batch.post_no_wait(nobody, data={"i": i}))
                    else:
                        batch.post_no_wait("conformance.record", data={"token": token, "i": i})
        failed = info.value.failed  # type: ignore[attr-defined]
        assert sorted(env.id for env in failed) == sorted(unroutable)
        assert f"{len(unroutable)} of 40 messages were not published" in str(info.value)
        records = await async_wait_for_records(client, token, count=40 - len(unroutable))
        assert sorted(r["data"]["i"] for r in records) == [i for i in range(40) if i % 9 != 4]


async def test_messages_the_broker_nacks_fail_with_a_publish_error_saying_so(
    service: Any, broker: Any
) -> None:
    # A queue that refuses publishes once it holds one message: the broker nacks the rest.
    queue = f"{service.name}.full"
    conn, ch = broker._channel()
    try:
        ch.exchange_declare(service.exchange, "topic", durable=True)
        ch.queue_declare(queue, arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
        ch.queue_bind(queue, service.exchange, routing_key="full.key")
    finally:
        conn.close()
    try:
        async with service.async_client() as client:
            assert await client.post_no_wait("full.key", data={"i": 0})
            with pytest.raises(PublishError) as one:
                await client.post_no_wait("full.key", data={"i": 1})
            assert "nacked by the broker" in str(one.value)
            with pytest.raises(PublishError) as info:
                async with client.batch() as batch:
                    for i in range(3):
                        batch.post_no_wait("full.key", data={"i": i})
            assert "3 of 3 messages were not published" in str(info.value)
            assert "nacked by the broker" in str(info.value)
        assert broker.count(queue) == 1
    finally:
        broker.delete([queue])


async def _ready_add(client: AsyncEventClient) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            await client.get("conformance.add", data={"x": 0, "y": 0}, timeout=1)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def test_without_aiormq_the_thread_adapter_is_used_and_a_warning_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "aiormq", None)  # import aiormq -> ImportError
    import zc_events_rabbitmq
    from zc_events_rabbitmq import _aio_load

    monkeypatch.delitem(sys.modules, "zc_events_rabbitmq._aio", raising=False)
    monkeypatch.delattr(zc_events_rabbitmq, "_aio", raising=False)

    monkeypatch.setattr(_aio_load, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="zc_events.rabbitmq"):
        backend = create_async_backend(
            "rabbitmq", Settings({"SERVICE_NAME": "x"}), exchange="zc-events-test-unused"
        )
    assert isinstance(backend, ThreadedAsyncBackend)
    assert "pip install 'zc-events-rabbitmq[async]'" in caplog.text
    backend.backend.close()


async def _ready(client: AsyncEventClient) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            await client.get("sync.add", data={"x": 0, "y": 0}, timeout=1)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
