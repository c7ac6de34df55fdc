"""examples/rabbitmq runs as its README says and prints what the README shows.

The test adds unique names (SERVICE_NAME, the exchange) so that concurrent runs do not meet, and
deletes what the worker declared.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from zc_events.testing import run_worker


@pytest.mark.rabbitmq
def test_rabbitmq_example(readme_steps: Callable[[str], list[Any]], output_matches: Any) -> None:
    from zc_events_rabbitmq.testing import delete_broker_objects

    worker, client = readme_steps("examples/rabbitmq/README.md")
    assert "worker" in worker.argv, worker.command
    name = f"zc-events-test-example-{uuid.uuid4().hex[:10]}"
    extra = {"SERVICE_NAME": name, "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"exchange": name})}
    try:
        with run_worker(argv=worker.argv, cwd=worker.cwd, env=worker.overrides(extra)) as served:
            result = client.run(extra)
            printed = result.stdout.replace(f"'{name}'", "'zc-events'").splitlines()
            output_matches(client.output, printed)
            deadline = time.monotonic() + 60  # the worker logs every no-wait message
            while served.output.count("log: {'event':") < 101:
                assert time.monotonic() < deadline, served.output
                time.sleep(0.1)
            assert served.terminate(30) == 0
    finally:
        delete_broker_objects([name, f"{name}.dead"], [name, f"{name}.dead"])
