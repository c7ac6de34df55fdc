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

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from .._client import EventClient
from .._exceptions import EnvelopeError, NoRouteError, RemoteError, RequestTimeout
from .._response import Response

__all__ = ["BackendConformance", "wait_for_records"]

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
