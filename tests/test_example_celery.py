"""examples/celery runs as its README says, without EVENTS_EXCHANGE, and prints what it shows.

The test adds unique names (the example's own SERVICE_NAME, PROJ_EVENTS_EXCHANGE and
PROJ_TASK_QUEUE) so that concurrent runs do not meet, removes EVENTS_EXCHANGE from the
environment (the example must not need it), and deletes the queues and exchanges the worker
declared (Celery's own shared exchanges only when no other worker uses them).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from zc_events.testing import run_worker

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


@pytest.mark.celery
def test_celery_example(readme_steps: Callable[[str], list[Any]], output_matches: Any) -> None:
    from zc_events_celery.testing import delete_celery_exchanges
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
        delete_celery_exchanges(AMQP_URL)
