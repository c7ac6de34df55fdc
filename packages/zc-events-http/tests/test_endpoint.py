"""Bad input gets a 4xx with a JSON error, never a 500 or a traceback — over a real server."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from zc_events import Envelope, EventClient, NoRouteError, RequestTimeout

pytestmark = pytest.mark.usefixtures("http_worker")


@pytest.fixture
def http(http_worker) -> httpx.Client:  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=http_worker.url) as client:
        yield client


def envelope_body(key: str = "conformance.add", **fields: object) -> bytes:
    envelope = Envelope.create(key, "GET", {"x": 1, "y": 2}, timeout=5, reply_to="http")
    wire = {**envelope.to_dict(), **fields}
    return json.dumps(wire).encode()


def error_of(answer: httpx.Response) -> dict[str, object]:
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert body["has_errors"] is True
    assert "trace" not in body["errors"][0]
    assert "Traceback" not in answer.text
    return body["errors"][0]


def test_a_valid_request_is_answered_with_the_response(http: httpx.Client) -> None:
    answer = http.post(
        "/zc-events", content=envelope_body(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 200
    assert answer.json() == {"data": {"answer": 3}, "has_errors": False, "errors": []}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"v": 2}',
        b"[" * 200_000,
        b'{"v":1,"id":"x","key":["k"],"method":"GET"}',
    ],
    ids=["empty", "text", "list", "version", "deep", "key-list"],
)
def test_a_body_that_is_not_an_envelope_is_400(http: httpx.Client, body: bytes) -> None:
    answer = http.post("/zc-events", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400
    assert error_of(answer)["type"] == "EnvelopeError"


def test_a_wrong_content_type_is_415(http: httpx.Client) -> None:
    answer = http.post(
        "/zc-events", content=envelope_body(), headers={"content-type": "text/plain"}
    )
    assert answer.status_code == 415
    assert "application/json" in str(error_of(answer)["message"])


def test_another_method_is_405(http: httpx.Client) -> None:
    answer = http.get("/zc-events")
    assert answer.status_code == 405
    assert "POST" in str(error_of(answer)["message"])


def test_another_path_is_404(http: httpx.Client) -> None:
    answer = http.post(
        "/admin", content=envelope_body(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 404
    assert error_of(answer)["type"] == "NotFound"


def test_an_oversized_body_is_413_without_reading_it(http_worker, tmp_path) -> None:  # type: ignore[no-untyped-def]
    body = b'{"v":1,"pad":"' + b"x" * (17 * 1024 * 1024) + b'"}'
    answer = httpx.post(
        http_worker.url + "/zc-events", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert "s3_claim_check" in str(error_of(answer)["message"])


def test_an_oversized_chunked_body_is_413(http_worker) -> None:  # type: ignore[no-untyped-def]
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(17):
            yield b"x" * (1024 * 1024)

    answer = httpx.post(
        http_worker.url + "/zc-events",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 413


def test_an_unknown_key_is_404_and_the_client_raises_no_route(
    http: httpx.Client, http_worker
) -> None:  # type: ignore[no-untyped-def]
    answer = http.post(
        "/zc-events",
        content=envelope_body("nobody.here"),
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 404
    assert error_of(answer)["type"] == "NoRouteError"
    with (
        EventClient("http", routes={"*": http_worker.url}) as client,
        pytest.raises(NoRouteError, match="nobody.here"),
    ):
        client.post_no_wait("nobody.here")


def test_an_expired_request_is_skipped(http: httpx.Client) -> None:
    body = envelope_body(deadline=time.time() - 1)
    answer = http.post("/zc-events", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 410
    assert error_of(answer)["type"] == "RequestTimeout"


def test_the_server_keeps_serving_after_bad_input(http: httpx.Client, http_worker) -> None:  # type: ignore[no-untyped-def]
    for body in (b"\xff\xfe", b"{" * 100_000, b"null", b'{"v":1}'):
        http.post("/zc-events", content=body, headers={"content-type": "application/json"})
    with EventClient("http", routes={"*": http_worker.url}) as client:
        assert client.get("conformance.add", data={"x": 2, "y": 2}, timeout=5).data == {"answer": 4}


def test_a_deadline_shorter_than_the_timeout_wins(http_worker) -> None:  # type: ignore[no-untyped-def]
    with (
        EventClient("http", routes={"*": http_worker.url}) as client,
        pytest.raises(RequestTimeout),
    ):
        client.get("conformance.sleep", data={"seconds": 2}, timeout=0.3)
