"""The backend conformance suite: one set of tests every transport must pass.

How to use it in a transport package: docs/writing-a-transport.md.

Subclass :class:`BackendConformance` in a test module, set ``backend_name``, and provide a
``client`` fixture: an :class:`~zc_events.EventClient` on your backend, talking to a server that
serves :mod:`zc_events.testing.handlers` (in-process or ``zc-events worker
zc_events.testing.handlers``)::

    class TestMyTransport(BackendConformance):
        backend_name = "mytransport"

        @pytest.fixture
        def client(self, my_worker):
            with EventClient("mytransport", url=...) as client:
                yield client
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from .._async_client import AsyncEventClient
from .._client import EventClient
from .._exceptions import EnvelopeError, NoRouteError, RemoteError, RequestTimeout
from .._response import Response

__all__ = [
    "AsyncBackendConformance",
    "BackendConformance",
    "async_wait_for_records",
    "wait_for_records",
]

WAIT_METHODS = ("get", "post", "put", "patch", "delete")
NO_WAIT_METHODS = tuple(f"{m}_no_wait" for m in WAIT_METHODS)


def wait_for_records(
    client: EventClient, token: str, count: int = 1, timeout: float = 15.0
) -> list[dict[str, Any]]:
    """Poll ``conformance.recorded`` until ``count`` records for ``token`` arrived."""
    deadline = time.monotonic() + timeout
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        records = client.get("conformance.recorded", data={"token": token}).data or []
        if len(records) >= count:
            return records
        time.sleep(0.02)
    raise AssertionError(f"expected {count} no-wait message(s) for {token}, got {len(records)}")


class BackendConformance:
    """Tests every backend must pass. Subclasses provide the ``client`` fixture."""

    #: Entry-point name of the backend under test (checked by the root coverage test).
    backend_name: ClassVar[str] = ""
    #: Seconds a slow handler sleeps in the timeout test; the call waits a tenth of it.
    slow_seconds: ClassVar[float] = 3.0
    #: What a key nobody serves raises; RequestTimeout on broadcast transports.
    unknown_key_error: ClassVar[type[Exception]] = NoRouteError
    #: Bytes in the large-payload test.
    large_payload_bytes: ClassVar[int] = 1024 * 1024

    @pytest.fixture
    def client(self) -> Iterator[EventClient]:
        raise NotImplementedError("subclasses provide a 'client' fixture")

    @pytest.mark.parametrize("verb", WAIT_METHODS)
    def test_waiting_verb_round_trip(self, client: EventClient, verb: str) -> None:
        response = getattr(client, verb)("conformance.echo", data={"n": 1, "verb": verb})
        assert response.has_errors is False, response.errors
        assert response.errors == []
        assert response.data["method"] == verb.upper()
        assert response.data["data"] == {"n": 1, "verb": verb}
        assert response.data["key"] == "conformance.echo"

    def test_call_is_post(self, client: EventClient) -> None:
        assert client.call("conformance.echo", data=1).data["method"] == "POST"

    def test_add(self, client: EventClient) -> None:
        response = client.get("conformance.add", data={"x": 1, "y": 1})
        assert (response.data, response.has_errors) == ({"answer": 2}, False)

    @pytest.mark.parametrize("verb", NO_WAIT_METHODS)
    def test_no_wait_is_delivered(self, client: EventClient, verb: str) -> None:
        token = str(uuid.uuid4())
        message_id = getattr(client, verb)("conformance.record", data={"token": token})
        assert isinstance(message_id, str) and message_id
        records = wait_for_records(client, token)
        assert records == [{"method": verb.split("_")[0].upper(), "data": {"token": token}}]

    def test_call_no_wait_is_post(self, client: EventClient) -> None:
        token = str(uuid.uuid4())
        client.call_no_wait("conformance.record", data={"token": token})
        assert wait_for_records(client, token)[0]["method"] == "POST"

    def test_batch_of_no_wait(self, client: EventClient) -> None:
        token = str(uuid.uuid4())
        with client.batch() as batch:
            for i in range(50):
                batch.post_no_wait("conformance.record", data={"token": token, "i": i})
        records = wait_for_records(client, token, count=50)
        assert sorted(r["data"]["i"] for r in records) == list(range(50))

    def test_remote_exception_becomes_error_response(self, client: EventClient) -> None:
        response = client.get("conformance.add", data={"x": 1})
        assert response.data is None
        assert response.has_errors is True
        error = response.errors[0]
        assert (error["type"], error["message"]) == ("KeyError", "'y'")
        assert "trace" not in error  # no server traceback unless ZC_EVENTS_SEND_TRACEBACKS
        with pytest.raises(RemoteError, match="KeyError"):
            response.raise_for_errors()

    def test_error_message_is_kept(self, client: EventClient) -> None:
        response = client.post("conformance.fail", data={"message": "nope ünïcode"})
        assert response.errors[0]["type"] == "ValueError"
        assert response.errors[0]["message"] == "nope ünïcode"

    def test_status_round_trip(self, client: EventClient) -> None:
        response = client.post("conformance.status", data={"id": 7})
        assert (response.data, response.status, response.has_errors) == ({"id": 7}, 201, False)

    def test_non_json_result_becomes_error_response(self, client: EventClient) -> None:
        response = client.get("conformance.unserialisable")
        assert response.has_errors is True
        assert response.errors[0]["type"] == "TypeError"
        assert "conformance.unserialisable" in response.errors[0]["message"]

    def test_server_keeps_serving_after_errors(self, client: EventClient) -> None:
        client.get("conformance.unserialisable")
        client.get("conformance.add", data={})
        assert client.get("conformance.add", data={"x": 2, "y": 3}).data == {"answer": 5}

    def test_timeout(self, client: EventClient) -> None:
        wait = self.slow_seconds / 10
        # Connected first: the bound below is about the timeout, not a cold client's set-up.
        assert client.get("conformance.add", data={"x": 0, "y": 1}).data == {"answer": 1}
        started = time.monotonic()
        with pytest.raises(RequestTimeout) as info:
            client.get("conformance.sleep", data={"seconds": self.slow_seconds}, timeout=wait)
        elapsed = time.monotonic() - started
        assert "conformance.sleep" in str(info.value)
        assert elapsed < self.slow_seconds, f"a {wait} s timeout took {elapsed:.2f} s to fire"

    def test_unknown_key(self, client: EventClient) -> None:
        key = f"conformance.nobody-{uuid.uuid4()}"
        with pytest.raises(self.unknown_key_error) as info:
            client.get(key, data={}, timeout=1.0)
        assert key in str(info.value)

    def test_unknown_key_no_wait(self, client: EventClient) -> None:
        key = f"conformance.nobody-{uuid.uuid4()}"
        if self.unknown_key_error is NoRouteError:
            with pytest.raises(NoRouteError):
                client.post_no_wait(key, data={})
        else:
            # A broadcast transport cannot tell that nobody handles a key: the message is
            # published (the caller gets its id) and every service ignores it.
            message_id = client.post_no_wait(key, data={})
            assert isinstance(message_id, str) and message_id
        assert client.get("conformance.add", data={"x": 1, "y": 2}).data == {"answer": 3}

    def test_unicode_round_trip(self, client: EventClient) -> None:
        data = {"text": "zażółć gęślą jaźń — 東京 — 🚀", "ключ": ["é", "\u0000", "\\/"]}
        assert client.post("conformance.echo", data=data).data["data"] == data

    def test_large_payload(self, client: EventClient) -> None:
        blob = "x" * self.large_payload_bytes
        response = client.post("conformance.echo", data={"blob": blob})
        assert response.data["data"]["blob"] == blob

    def test_headers_round_trip(self, client: EventClient) -> None:
        headers = {"pk": "42", "query_string": "a=1&b=2", "roles": ["admin"], "user_id": 7}
        response = client.get("conformance.echo", data=None, headers=headers)
        for name, value in headers.items():
            assert response.data["headers"][name] == value

    def test_concurrent_callers(self, client: EventClient) -> None:
        results: dict[tuple[int, int], Any] = {}
        failures: list[BaseException] = []

        def caller(t: int) -> None:
            try:
                for i in range(20):
                    r = client.get("conformance.add", data={"x": t, "y": i})
                    results[(t, i)] = r.data
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=caller, args=(t,)) for t in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not failures, failures
        assert results == {(t, i): {"answer": t + i} for t in range(8) for i in range(20)}

    def test_non_json_data_is_refused_locally(self, client: EventClient) -> None:
        with pytest.raises(EnvelopeError, match="JSON") as info:
            client.post("conformance.echo", data={"when": object()})
        assert info.value.field == "data"
        with pytest.raises(EnvelopeError, match="JSON"):
            client.post_no_wait("conformance.echo", data={1, 2})

    @pytest.mark.parametrize("key", ["", 42, "x" * 256, "tab\there"])
    def test_bad_key_is_refused_locally(self, client: EventClient, key: Any) -> None:
        with pytest.raises(EnvelopeError) as info:
            client.get(key)
        assert info.value.field == "key"

    def test_bad_method_is_refused_locally(self, client: EventClient) -> None:
        with pytest.raises(EnvelopeError, match="method"):
            client.request("FETCH", "conformance.echo")

    def test_response_type(self, client: EventClient) -> None:
        assert isinstance(client.get("conformance.echo"), Response)

    def test_async_handler(self, client: EventClient) -> None:
        # An async def handler is awaited by the worker: its result, not a coroutine, comes back.
        response = client.get("conformance.async_add", data={"x": 2, "y": 3})
        assert (response.data, response.has_errors) == ({"answer": 5}, False)
        failed = client.get("conformance.async_add", data={"x": 2})
        assert (failed.errors[0]["type"], failed.errors[0]["message"]) == ("KeyError", "'y'")


async def async_wait_for_records(
    client: AsyncEventClient, token: str, count: int = 1, timeout: float = 15.0
) -> list[dict[str, Any]]:
    """Poll ``conformance.recorded`` until ``count`` records for ``token`` arrived."""
    deadline = time.monotonic() + timeout
    records: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        records = (await client.get("conformance.recorded", data={"token": token})).data or []
        if len(records) >= count:
            return records
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {count} no-wait message(s) for {token}, got {len(records)}")


class AsyncBackendConformance:
    """The async half: tests every backend's asyncio face must pass (its native
    :class:`~zc_events.AsyncBackend`, or the thread adapter). Subclasses provide an
    ``async_client`` fixture: an :class:`~zc_events.AsyncEventClient` talking to a server that
    serves :mod:`zc_events.testing.handlers`::

        class TestMyTransportAsync(AsyncBackendConformance):
            backend_name = "mytransport"

            @pytest_asyncio.fixture      # or @pytest.fixture with asyncio_mode = "auto"
            async def async_client(self, my_worker):
                async with AsyncEventClient("mytransport", url=...) as client:
                    yield client

    Needs pytest-asyncio (the ``testing`` extra of zc-events-core installs it).
    """

    pytestmark = [pytest.mark.asyncio]

    #: Entry-point name of the backend under test (checked by the root coverage test).
    backend_name: ClassVar[str] = ""
    #: Seconds a slow handler sleeps in the timeout tests; the call waits a tenth of it.
    slow_seconds: ClassVar[float] = 3.0
    #: What a key nobody serves raises; RequestTimeout on broadcast transports.
    unknown_key_error: ClassVar[type[Exception]] = NoRouteError
    #: Bytes in the large-payload test.
    large_payload_bytes: ClassVar[int] = 1024 * 1024
    #: Calls in flight at once in the concurrency test.
    concurrent_calls: ClassVar[int] = 100

    @pytest.fixture
    def async_client(self) -> AsyncEventClient:
        raise NotImplementedError("subclasses provide an 'async_client' fixture")

    @pytest.mark.parametrize("verb", WAIT_METHODS)
    async def test_waiting_verb_round_trip(self, async_client: AsyncEventClient, verb: str) -> None:
        response = await getattr(async_client, verb)("conformance.echo", data={"n": 1, "v": verb})
        assert response.has_errors is False, response.errors
        assert response.data["method"] == verb.upper()
        assert response.data["data"] == {"n": 1, "v": verb}
        assert response.data["key"] == "conformance.echo"

    async def test_call_is_post(self, async_client: AsyncEventClient) -> None:
        assert (await async_client.call("conformance.echo", data=1)).data["method"] == "POST"

    async def test_request(self, async_client: AsyncEventClient) -> None:
        response = await async_client.request("PUT", "conformance.echo", data=[1], timeout=30)
        assert (response.data["method"], response.data["data"]) == ("PUT", [1])

    async def test_add(self, async_client: AsyncEventClient) -> None:
        response = await async_client.get("conformance.add", data={"x": 1, "y": 1})
        assert (response.data, response.has_errors) == ({"answer": 2}, False)

    async def test_async_handler(self, async_client: AsyncEventClient) -> None:
        response = await async_client.get("conformance.async_add", data={"x": 2, "y": 3})
        assert (response.data, response.has_errors) == ({"answer": 5}, False)

    @pytest.mark.parametrize("verb", NO_WAIT_METHODS)
    async def test_no_wait_is_delivered(self, async_client: AsyncEventClient, verb: str) -> None:
        token = str(uuid.uuid4())
        message_id = await getattr(async_client, verb)("conformance.record", data={"token": token})
        assert isinstance(message_id, str) and message_id
        records = await async_wait_for_records(async_client, token)
        assert records == [{"method": verb.split("_")[0].upper(), "data": {"token": token}}]

    async def test_call_no_wait_and_request_no_wait(self, async_client: AsyncEventClient) -> None:
        token = str(uuid.uuid4())
        await async_client.call_no_wait("conformance.record", data={"token": token})
        await async_client.request_no_wait("PATCH", "conformance.record", data={"token": token})
        records = await async_wait_for_records(async_client, token, count=2)
        assert sorted(r["method"] for r in records) == ["PATCH", "POST"]

    async def test_batch_of_no_wait(self, async_client: AsyncEventClient) -> None:
        token = str(uuid.uuid4())
        async with async_client.batch() as batch:
            ids = [
                batch.post_no_wait("conformance.record", data={"token": token, "i": i})
                for i in range(50)
            ]
            assert len(batch) == 50
        assert len(set(ids)) == 50
        records = await async_wait_for_records(async_client, token, count=50)
        assert sorted(r["data"]["i"] for r in records) == list(range(50))

    async def test_remote_exception_becomes_error_response(
        self, async_client: AsyncEventClient
    ) -> None:
        response = await async_client.get("conformance.add", data={"x": 1})
        assert (response.data, response.has_errors) == (None, True)
        assert (response.errors[0]["type"], response.errors[0]["message"]) == ("KeyError", "'y'")
        with pytest.raises(RemoteError, match="KeyError"):
            response.raise_for_errors()

    async def test_error_message_and_status(self, async_client: AsyncEventClient) -> None:
        failed = await async_client.post("conformance.fail", data={"message": "nope ünïcode"})
        assert (failed.errors[0]["type"], failed.errors[0]["message"]) == (
            "ValueError",
            "nope ünïcode",
        )
        created = await async_client.post("conformance.status", data={"id": 7})
        assert (created.data, created.status, created.has_errors) == ({"id": 7}, 201, False)

    async def test_non_json_result_becomes_error_response(
        self, async_client: AsyncEventClient
    ) -> None:
        response = await async_client.get("conformance.unserialisable")
        assert response.has_errors is True
        assert response.errors[0]["type"] == "TypeError"

    async def test_timeout(self, async_client: AsyncEventClient) -> None:
        wait = self.slow_seconds / 10
        # Connected first: the bound below is about the timeout, not a cold client's set-up.
        await self._connect(async_client)
        started = time.monotonic()
        with pytest.raises(RequestTimeout) as info:
            await async_client.get(
                "conformance.sleep", data={"seconds": self.slow_seconds}, timeout=wait
            )
        elapsed = time.monotonic() - started
        assert "conformance.sleep" in str(info.value)
        assert elapsed < self.slow_seconds, f"a {wait} s timeout took {elapsed:.2f} s to fire"
        assert (await async_client.get("conformance.add", data={"x": 1, "y": 2})).data == {
            "answer": 3
        }

    async def _connect(self, async_client: AsyncEventClient) -> None:
        response = await async_client.get("conformance.add", data={"x": 0, "y": 1})
        assert response.data == {"answer": 1}

    async def test_wait_for_cancels_the_call(self, async_client: AsyncEventClient) -> None:
        await self._connect(async_client)
        started = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            await asyncio.wait_for(
                async_client.get(
                    "conformance.sleep",
                    data={"seconds": self.slow_seconds},
                    timeout=self.slow_seconds * 10,
                ),
                self.slow_seconds / 10,
            )
        elapsed = time.monotonic() - started
        assert not isinstance(info.value, RequestTimeout), "wait_for's own timeout, not ours"
        assert elapsed < self.slow_seconds, f"wait_for took {elapsed:.2f} s to cancel the call"
        assert (await async_client.get("conformance.add", data={"x": 2, "y": 2})).data == {
            "answer": 4
        }

    async def test_cancelling_a_task_cancels_only_its_call(
        self, async_client: AsyncEventClient
    ) -> None:
        # Connected first: what is measured is the cancellation, not a cold client's set-up.
        await self._connect(async_client)
        slow = asyncio.create_task(
            async_client.get(
                "conformance.sleep",
                data={"seconds": self.slow_seconds},
                timeout=self.slow_seconds * 10,
            )
        )
        others = [
            asyncio.create_task(async_client.get("conformance.add", data={"x": i, "y": 1}))
            for i in range(10)
        ]
        await asyncio.sleep(0.05)
        cancelled_at = time.monotonic()
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        elapsed = time.monotonic() - cancelled_at
        # Its reply comes after slow_seconds: a cancelled call must not wait for it (it ends in
        # milliseconds; the bound is generous so that a loaded machine cannot break it).
        assert elapsed < self.slow_seconds, f"the cancelled call took {elapsed:.2f} s to end"
        # The other calls (still in flight, or queued behind busy server threads) all complete.
        results = await asyncio.gather(*others)
        assert [r.data for r in results] == [{"answer": i + 1} for i in range(10)]
        assert (await async_client.get("conformance.add", data={"x": 5, "y": 5})).data == {
            "answer": 10
        }

    async def test_unknown_key(self, async_client: AsyncEventClient) -> None:
        key = f"conformance.nobody-{uuid.uuid4()}"
        with pytest.raises(self.unknown_key_error) as info:
            await async_client.get(key, data={}, timeout=1.0)
        assert key in str(info.value)

    async def test_unknown_key_no_wait(self, async_client: AsyncEventClient) -> None:
        key = f"conformance.nobody-{uuid.uuid4()}"
        if self.unknown_key_error is NoRouteError:
            with pytest.raises(NoRouteError):
                await async_client.post_no_wait(key, data={})
        else:
            # A broadcast transport cannot tell that nobody handles a key: it publishes.
            assert isinstance(await async_client.post_no_wait(key, data={}), str)
        assert (await async_client.get("conformance.add", data={"x": 1, "y": 2})).data == {
            "answer": 3
        }

    async def test_unicode_and_headers_round_trip(self, async_client: AsyncEventClient) -> None:
        data = {"text": "zażółć gęślą jaźń — 東京 — 🚀", "ключ": ["é", "\u0000", "\\/"]}
        headers = {"pk": "42", "query_string": "a=1&b=2", "roles": ["admin"], "user_id": 7}
        response = await async_client.post("conformance.echo", data=data, headers=headers)
        assert response.data["data"] == data
        for name, value in headers.items():
            assert response.data["headers"][name] == value

    async def test_large_payload(self, async_client: AsyncEventClient) -> None:
        blob = "x" * self.large_payload_bytes
        response = await async_client.post("conformance.echo", data={"blob": blob})
        assert response.data["data"]["blob"] == blob

    async def test_many_tasks_share_one_client(self, async_client: AsyncEventClient) -> None:
        # Replies must be matched to their callers (by correlation id), whatever their order.
        n = self.concurrent_calls
        responses = await asyncio.gather(
            *(
                async_client.get("conformance.add", data={"x": i, "y": 1000})
                if i % 2
                else async_client.get("conformance.async_add", data={"x": i, "y": 1000})
                for i in range(n)
            )
        )
        assert [r.data for r in responses] == [{"answer": i + 1000} for i in range(n)]

    async def test_bad_arguments_are_refused_locally(self, async_client: AsyncEventClient) -> None:
        with pytest.raises(EnvelopeError, match="JSON") as info:
            await async_client.post("conformance.echo", data={"when": object()})
        assert info.value.field == "data"
        with pytest.raises(EnvelopeError, match="JSON"):
            await async_client.post_no_wait("conformance.echo", data={1, 2})
        with pytest.raises(EnvelopeError) as key_info:
            await async_client.get("tab\there")
        assert key_info.value.field == "key"
        with pytest.raises(EnvelopeError, match="method"):
            await async_client.request("FETCH", "conformance.echo")

    async def test_response_type(self, async_client: AsyncEventClient) -> None:
        assert isinstance(await async_client.get("conformance.echo"), Response)
