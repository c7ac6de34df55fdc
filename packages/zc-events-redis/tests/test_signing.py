"""``hmac_signing`` over a real Redis Streams worker: the reply list the transport chooses is set
before middleware runs (``Backend.prepare_request``), so the signature covers it."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from zc_events import Envelope, HmacSigning, SignatureError

pytestmark = pytest.mark.redis

SECRET = "redis-signing-secret"


def test_signed_calls_tampering_and_unsigned_replies(service: Any) -> None:
    service.start(
        extra_env={
            "ZC_EVENTS_MIDDLEWARE": '["hmac_signing"]',
            "ZC_EVENTS_MIDDLEWARE_OPTIONS": json.dumps({"hmac_signing": {"secret": SECRET}}),
        }
    )
    with service.client() as plain:
        service.wait_ready(plain)
        unsigned = plain.get("conformance.echo", data=1)
        assert unsigned.errors[0]["type"] == "SignatureError"
    with service.client(middleware=[HmacSigning(SECRET)]) as client:
        response = client.get("conformance.echo", data={"f": 1e-7})
        assert response.ok, response.errors
        assert response.data["data"] == {"f": 1e-7}
        # A signed request whose data was changed after signing is refused.
        envelope = Envelope.create("conformance.echo", data=1, timeout=20)
        client.backend.prepare_request(envelope)
        envelope = HmacSigning(SECRET).outgoing_request(envelope)
        refused = client.backend.request(dataclasses.replace(envelope, data=2), 20)
        assert refused.errors[0]["type"] == "SignatureError"


def test_an_unsigned_reply_raises(served: Any) -> None:
    with (
        served.client(middleware=[HmacSigning(SECRET)]) as client,
        pytest.raises(SignatureError, match="is not signed"),
    ):
        client.get("conformance.echo", data=1)
