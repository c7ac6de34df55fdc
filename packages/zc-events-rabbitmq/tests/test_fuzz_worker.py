"""1,000 hostile bodies straight into a real worker's queues (native and legacy), then a valid
call that must still be answered: one bad message never wedges a worker."""

from __future__ import annotations

from typing import Any

import pika
import pytest

from zc_events.testing import fuzz_bodies

pytestmark = [pytest.mark.rabbitmq, pytest.mark.redis]

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@pytest.fixture(scope="module")
def fuzzed(make_service: Any) -> Any:
    svc = make_service()
    svc.start(legacy=True, concurrency=2)
    for backend in ("rabbitmq", "rabbitmq_legacy"):
        with svc.client(backend) as client:
            svc.wait_ready(client)
    return svc


def publish_all(exchange: str, routing_key: str, legacy: bool) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = conn.channel()
        channel.confirm_delivery()
        for n, body in enumerate(fuzz_bodies(1000, seed=7 if legacy else 3)):
            headers = {"task": "microservice.event", "id": f"t-{n}"} if legacy and n % 3 else None
            channel.basic_publish(
                exchange,
                routing_key,
                body,
                pika.BasicProperties(
                    content_type="application/json",
                    headers=headers,
                    reply_to="amq.rabbitmq.reply-to.fake" if n % 2 else None,
                    priority=n % 10,
                ),
            )
    finally:
        conn.close()


@pytest.mark.parametrize("backend", ["rabbitmq", "rabbitmq_legacy"])
def test_a_thousand_fuzzed_bodies_then_a_valid_call(
    fuzzed: Any, backend: str, broker: Any, wait_for: Any
) -> None:
    if backend == "rabbitmq":
        publish_all(fuzzed.exchange, "conformance.echo", legacy=False)
        queue = fuzzed.name
    else:
        publish_all(fuzzed.events_exchange, "", legacy=True)
        queue = f"{fuzzed.name}-events"
    # Every one of them is taken off the queue (dead-lettered or ignored), none loops.
    wait_for(lambda: broker.count(queue) == 0, 300, f"{queue} to be drained")
    with fuzzed.client(backend) as client:
        response = client.get("conformance.add", data={"x": 1, "y": 2}, timeout=120)
    assert response.data == {"answer": 3}
    for worker in fuzzed.workers:
        assert worker.returncode is None, worker.output[-3000:]
