"""Middleware works unchanged over HTTP: signing, and the size limit that points to claim-check."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from zc_events import EnvelopeError, EventClient, configure, reset

SECRETS = {"hmac_signing": {"secrets": {"k1": "s3cret-for-tests"}}}


@pytest.fixture
def settings() -> Iterator[None]:
    yield
    reset()


def test_signed_calls_over_http(worker_factory, settings) -> None:  # type: ignore[no-untyped-def]
    worker = worker_factory(
        env={
            "ZC_EVENTS_MIDDLEWARE": json.dumps(["hmac_signing"]),
            "ZC_EVENTS_MIDDLEWARE_OPTIONS": json.dumps(SECRETS),
        }
    )
    routes = {"*": worker.url}
    configure(middleware_options=SECRETS)
    with EventClient("http", routes=routes, middleware=["hmac_signing"]) as client:
        assert client.get("conformance.add", data={"x": 1, "y": 2}).data == {"answer": 3}
    with EventClient("http", routes=routes) as unsigned:
        response = unsigned.get("conformance.add", data={"x": 1, "y": 2})
    assert response.has_errors
    assert response.errors[0]["type"] == "SignatureError"


def test_a_message_over_the_size_limit_is_refused_before_sending(settings) -> None:  # type: ignore[no-untyped-def]
    configure(max_message_bytes=1000)
    with EventClient("http", routes={"*": "http://127.0.0.1:9"}) as client:
        with pytest.raises(EnvelopeError, match="s3_claim_check"):
            client.post("conformance.echo", data="x" * 2000)
        with pytest.raises(EnvelopeError, match="s3_claim_check"):
            client.post_no_wait("conformance.echo", data="x" * 2000)
