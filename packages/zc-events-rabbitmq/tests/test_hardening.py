"""Real workers: no tracebacks by default, handler exceptions logged at ERROR with the
traceback, one INFO line per message, and messages over ZC_EVENTS_MAX_MESSAGE_BYTES
dead-lettered (native and legacy queues) while the worker keeps serving."""

from __future__ import annotations

import json
from typing import Any

import pytest

from zc_events import Envelope, legacy

pytestmark = [pytest.mark.rabbitmq, pytest.mark.redis]

LIMIT = 100_000


@pytest.fixture(scope="module")
def limited(make_service: Any) -> Any:
    """A native+legacy worker with a 100 kB message limit."""
    svc = make_service()
    svc.start(legacy=True, extra_env={"ZC_EVENTS_MAX_MESSAGE_BYTES": str(LIMIT)})
    with svc.client() as client:
        svc.wait_ready(client)
    return svc


@pytest.fixture(scope="module")
def tracing(make_service: Any) -> Any:
    svc = make_service()
    svc.start(legacy=True, extra_env={"ZC_EVENTS_SEND_TRACEBACKS": "1"})
    with svc.client() as client:
        svc.wait_ready(client)
    return svc


@pytest.mark.parametrize("backend", ["rabbitmq", "rabbitmq_legacy"])
def test_no_traceback_for_the_caller_but_an_error_line_with_it(
    limited: Any, backend: str, wait_for: Any
) -> None:
    with limited.client(backend) as client:
        response = client.get("conformance.add", data={"x": 1})
        assert response.errors[0]["type"] == "KeyError"
        assert "trace" not in response.errors[0]
        message_id = client.post_no_wait("conformance.add", data={"x": 1})
    wait_for(  # the INFO line comes last, after the ERROR line
        lambda: f"POST 'conformance.add' id {message_id} " in limited.workers[0].output,
        30,
        "the no-wait message's INFO line in the worker log",
    )
    log = limited.workers[0].output
    assert "ERROR" in log and "Traceback (most recent call last)" in log
    assert f"POST 'conformance.add' (id {message_id}) failed: KeyError" in log
    assert f"POST 'conformance.add' id {message_id} " in log  # the INFO line
    assert "ms KeyError" in log


@pytest.mark.parametrize("backend", ["rabbitmq", "rabbitmq_legacy"])
def test_send_tracebacks_setting(tracing: Any, backend: str) -> None:
    with tracing.client(backend) as client:
        error = client.get("conformance.add", data={"x": 1}).errors[0]
    assert "KeyError: 'y'" in error["trace"]


def test_oversized_messages_are_dead_lettered(limited: Any, broker: Any, wait_for: Any) -> None:
    big = Envelope.create("conformance.echo", data="x" * (LIMIT + 1))
    broker.publish(limited.exchange, "conformance.echo", big.encode())
    body = legacy.build_request(Envelope.create("conformance.echo", data="y" * (LIMIT + 1)), None)
    broker.publish(limited.events_exchange, "", body.body, **body.properties)
    dead = f"{limited.name}.dead"
    # the failed no-wait calls of the tests above are dead-lettered too: keep the large ones
    bodies: list[Any] = []

    def arrived() -> bool:
        bodies.extend(json.loads(b) for _, b in broker.get_all(dead) if len(b) > LIMIT)
        return len(bodies) >= 2

    wait_for(arrived, 30, "two dead-lettered messages")
    log = limited.workers[0].output
    assert log.count(f"over ZC_EVENTS_MAX_MESSAGE_BYTES ({LIMIT})") >= 2
    with limited.client() as client:  # and the worker keeps serving
        assert client.get("conformance.echo", data=1).ok
    assert len(bodies) == 2


@pytest.mark.parametrize("backend", ["rabbitmq", "rabbitmq_legacy"])
def test_the_client_refuses_a_message_over_the_limit_at_once(limited: Any, backend: str) -> None:
    from zc_events import EnvelopeError

    big = "x" * (16 * 1024 * 1024 + 1)
    with limited.client(backend) as client:
        with pytest.raises(EnvelopeError, match="ZC_EVENTS_MAX_MESSAGE_BYTES.*s3_claim_check"):
            client.get("conformance.echo", data=big)
        with pytest.raises(EnvelopeError, match="s3_claim_check"):
            client.post_no_wait("conformance.echo", data=big)
        assert client.get("conformance.echo", data=1).ok
