"""The conformance suite over HTTP, against a real ``zc-events worker --backend http``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from zc_events import AsyncEventClient, EventClient
from zc_events.testing.conformance import AsyncBackendConformance, BackendConformance
from zc_events_http._aio import AsyncHttpBackend


class TestHttpConformance(BackendConformance):
    backend_name = "http"

    @pytest.fixture
    def client(self, http_worker) -> Iterator[EventClient]:  # type: ignore[no-untyped-def]
        with EventClient("http", routes={"*": http_worker.url}) as client:
            yield client


class TestHttpAsyncConformance(AsyncBackendConformance):
    """The async half, on the native ``httpx.AsyncClient`` backend."""

    backend_name = "http"

    @pytest.fixture
    async def async_client(self, http_worker) -> AsyncIterator[AsyncEventClient]:  # type: ignore[no-untyped-def]
        async with AsyncEventClient("http", routes={"*": http_worker.url}) as client:
            assert isinstance(client.backend, AsyncHttpBackend)
            yield client


def test_async_handlers_run_concurrently_on_the_server_loop(http_worker) -> None:  # type: ignore[no-untyped-def]
    """100 calls to a handler that awaits 1 s finish together, not one after another."""
    import asyncio
    import time

    async def main() -> float:
        async with AsyncEventClient("http", routes={"*": http_worker.url}) as client:
            started = time.monotonic()
            results = await asyncio.gather(
                *(
                    client.get("conformance.async_sleep", data={"seconds": 1.0}, timeout=120)
                    for _ in range(100)
                )
            )
            assert all(not r.has_errors for r in results), results[0].errors
            return time.monotonic() - started

    elapsed = asyncio.run(main())
    # One after another they take 100 s; together about 1 s (a wide margin for a loaded machine).
    assert elapsed < 100 * 1.0 / 2, f"100 calls took {elapsed:.1f} s: not served concurrently"


def test_inline_serves_sync_and_async_handlers(worker_factory) -> None:  # type: ignore[no-untyped-def]
    worker = worker_factory(options={"inline": True})
    with EventClient("http", routes={"*": worker.url}) as client:
        assert client.get("conformance.add", data={"x": 1, "y": 2}).data == {"answer": 3}
        assert client.get("conformance.async_add", data={"x": 2, "y": 2}).data == {"answer": 4}
        assert client.get("conformance.add", data={"x": 1}).errors[0]["type"] == "KeyError"
