"""examples/celery runs as its README says, without EVENTS_EXCHANGE, and prints what it shows.

The test adds unique names (the example's own SERVICE_NAME, PROJ_EVENTS_EXCHANGE and
PROJ_TASK_QUEUE) so that concurrent runs do not meet, removes EVENTS_EXCHANGE from the
environment (the example must not need it), and deletes the queues and exchanges the worker
declared (Celery's own shared exchanges only when no other worker uses them).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from zc_events.testing import run_worker

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
CELERY_EXCHANGES = ("celeryev", "celery.pidbox", "reply.celery.pidbox")


@pytest.mark.celery
def test_celery_example(readme_steps: Callable[[str], list[Any]], output_matches: Any) -> None:
    from zc_events_rabbitmq.testing import delete_broker_objects

    worker, client = readme_steps("examples/celery/README.md")
    assert worker.argv[1:4] == ["-m", "celery", "-A"], worker.command
    tag = uuid.uuid4().hex[:10]
    service, exchange, tasks = (f"zc-events-test-example-{tag}{s}" for s in ("", "-fan", "-q"))
    extra = {
        "SERVICE_NAME": service,
        "PROJ_EVENTS_EXCHANGE": exchange,
        "PROJ_TASK_QUEUE": tasks,
        "EVENTS_EXCHANGE": None,
    }
    try:
        with run_worker(
            argv=worker.argv, cwd=worker.cwd, env=worker.overrides(extra), ready=" ready."
        ) as served:
            result = client.run(extra, timeout=120)
            output_matches(client.output, result.stdout.splitlines())
            assert served.terminate(60) == 0
    finally:
        delete_broker_objects([f"{service}-events", tasks], [exchange, tasks])
        delete_celery_exchanges_if_unused()


def delete_celery_exchanges_if_unused() -> None:
    """Celery's own exchanges (remote control, events), which every worker on the broker
    declares: delete them unless another worker still has a queue bound to them."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        for name in CELERY_EXCHANGES:
            # The stopped worker's auto-delete queues go a moment after its connection closes:
            # until then the exchange is "in use" (406). Another worker's stay, and so does it.
            deadline = time.monotonic() + 5
            while True:
                channel = connection.channel()
                try:
                    channel.exchange_delete(name, if_unused=True)
                    channel.close()
                    break
                except pika.exceptions.ChannelClosedByBroker:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
    finally:
        connection.close()
