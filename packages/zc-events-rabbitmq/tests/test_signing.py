"""``hmac_signing`` over real workers: the native ``rabbitmq`` worker and the ``rabbitmq_legacy``
worker (the zc_events 0.4 wire, signature in the headers dict, reply signature in the Redis
reply object). Tampered, replayed and unsigned requests are refused before the handler; forged
and unsigned replies raise SignatureError on the client."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

import pytest

from zc_events import Envelope, HmacSigning, SignatureError, new_id

pytestmark = [pytest.mark.rabbitmq, pytest.mark.redis]

SECRET = "signing-test-secret"
BACKENDS = ["rabbitmq", "rabbitmq_legacy"]


def signing_env(secret: str) -> dict[str, str]:
    return {
        "ZC_EVENTS_MIDDLEWARE": '["hmac_signing"]',
        "ZC_EVENTS_MIDDLEWARE_OPTIONS": json.dumps({"hmac_signing": {"secret": secret}}),
    }


def start_both(svc: Any, env: dict[str, str] | None) -> None:
    svc.start(backend="rabbitmq", extra_env=env)
    svc.start(backend="rabbitmq_legacy", extra_env=env)
    for backend in BACKENDS:
        with svc.client(backend) as client:
            svc.wait_ready(client)


@pytest.fixture(scope="module")
def signing(make_service: Any) -> Any:
    """A native and a legacy worker of one service, both signing with SECRET."""
    svc = make_service()
    start_both(svc, signing_env(SECRET))
    return svc


def signed_envelope(**changes: Any) -> Envelope:
    envelope = Envelope.create("conformance.echo", "GET", {"n": 1e-7}, {"pk": "1"}, timeout=20)
    envelope.reply_to = new_id()
    envelope = HmacSigning(SECRET).outgoing_request(envelope)
    return dataclasses.replace(envelope, **changes) if changes else envelope


def send_raw(svc: Any, backend: str, envelope: Envelope) -> Any:
    """Publish ``envelope`` as it is (no client middleware) and return the unverified reply."""
    with svc.client(backend) as client:
        return client.backend.request(envelope, 20)


@pytest.mark.parametrize("backend", BACKENDS)
def test_signed_calls_are_answered_with_signed_replies(signing: Any, backend: str) -> None:
    with signing.client(backend, middleware=[HmacSigning(SECRET)]) as client:
        response = client.get("conformance.echo", data={"f": 1e-7}, headers={"pk": "3"})
    assert response.ok, response.errors
    assert response.data["data"] == {"f": 1e-7}
    assert response.signature is not None


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("data", {"n": 2}),
        ("headers", "changed"),
        ("deadline", "later"),
        ("priority", 7),
        ("sent_at", 1.0),
        ("reply_to", "fresh"),
    ],
)
def test_tampered_requests_are_refused(signing: Any, backend: str, field: str, value: Any) -> None:
    envelope = signed_envelope()
    if value == "changed":
        value = {**envelope.headers, "pk": "2"}
    elif value == "later":
        value = time.time() + 600
    elif value == "fresh":
        value = new_id()
    if backend == "rabbitmq_legacy" and field in ("deadline", "priority", "sent_at"):
        # The legacy wire does not carry these fields: change the signed copy in the header.
        claims = dict(envelope.headers["x-zc-signature"])
        claims[field] = value
        tampered = dataclasses.replace(
            envelope, headers={**envelope.headers, "x-zc-signature": claims}
        )
    else:
        tampered = dataclasses.replace(envelope, **{field: value})
    response = send_raw(signing, backend, tampered)
    assert response.errors and response.errors[0]["type"] == "SignatureError", response.errors
    # The worker's log line may come after the reply: wait for it, not a fixed time.
    deadline = time.monotonic() + 30
    while True:
        logs = "\n".join(w.output for w in signing.workers)
        if f"id {tampered.id}" in logs or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert f"id {tampered.id}" in logs and "refused" in logs


@pytest.mark.parametrize("backend", BACKENDS)
def test_unsigned_requests_and_replays_are_refused(signing: Any, backend: str) -> None:
    unsigned = Envelope.create("conformance.echo", data=1, timeout=20)
    unsigned.reply_to = new_id()
    assert "not signed" in send_raw(signing, backend, unsigned).errors[0]["message"]
    envelope = signed_envelope()
    assert send_raw(signing, backend, envelope).ok
    replayed = send_raw(signing, backend, envelope)
    assert "already handled" in replayed.errors[0]["message"]


@pytest.fixture(scope="module")
def unsigned_and_forged(make_service: Any) -> dict[str, Any]:
    """Workers without signing (unsigned replies) and with the same key id but another secret
    (forged replies)."""
    unsigned, forged = make_service(), make_service()
    start_both(unsigned, None)
    start_both(forged, signing_env("some other secret"))
    return {"is not signed": unsigned, "bad signature": forged}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("match", ["is not signed", "bad signature"])
def test_unsigned_and_forged_replies_raise(
    unsigned_and_forged: dict[str, Any], backend: str, match: str
) -> None:
    svc = unsigned_and_forged[match]
    with (
        svc.client(backend, middleware=[HmacSigning(SECRET)]) as client,
        pytest.raises(SignatureError, match=match),
    ):
        client.get("conformance.echo", data=1)
