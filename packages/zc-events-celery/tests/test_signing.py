"""``hmac_signing`` over a real Celery worker (the legacy wire: signature in the headers dict,
reply signature in the Redis reply object)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from zc_events import Envelope, HmacSigning, SignatureError, new_id
from zc_events_celery.testing import celery_worker

pytestmark = pytest.mark.celery

SECRET = "celery-signing-secret"
HERE = Path(__file__).resolve().parent


def test_signed_calls_tampering_replays_and_unsigned_replies(
    make_service: Callable[[], Any],
) -> None:
    service = make_service()
    env = {
        **service.env,
        "ZC_EVENTS_MIDDLEWARE": '["hmac_signing"]',
        "ZC_EVENTS_MIDDLEWARE_OPTIONS": json.dumps({"hmac_signing": {"secret": SECRET}}),
    }
    with (
        celery_worker(
            "zc_events_celery_testapp",
            env=env,
            pythonpath=[str(HERE)],
            queues=[service.queue, service.default_queue],
        ),
        service.client(middleware=[HmacSigning(SECRET)]) as client,
    ):
        response = client.get("conformance.echo", data={"f": 1e-7}, timeout=60)
        assert response.ok, response.errors
        assert response.data["data"] == {"f": 1e-7}
        envelope = Envelope.create("conformance.echo", data=1, timeout=60)
        envelope.reply_to = new_id()
        envelope = HmacSigning(SECRET).outgoing_request(envelope)
        changed = client.backend.request(dataclasses.replace(envelope, data=2), 60)
        assert changed.errors[0]["type"] == "SignatureError"
        assert client.backend.request(envelope, 60).ok
        replayed = client.backend.request(envelope, 60)
        assert "already handled" in replayed.errors[0]["message"]
    with (
        service.worker() as _,
        service.client(middleware=[HmacSigning(SECRET)]) as client,
        pytest.raises(SignatureError, match="is not signed"),
    ):
        client.get("conformance.echo", data=1, timeout=60)
