"""examples/opentelemetry runs as its README says: one trace id across the client and worker
processes, with the worker's spans the children of the client's."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from zc_events.testing import run_worker


@pytest.mark.rabbitmq
def test_opentelemetry_example(
    readme_steps: Callable[[str], list[Any]], output_matches: Any
) -> None:
    from zc_events_rabbitmq.testing import delete_broker_objects

    worker, client = readme_steps("examples/opentelemetry/README.md")
    name = f"zc-events-test-example-otel-{uuid.uuid4().hex[:10]}"
    extra = {"SERVICE_NAME": name, "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"exchange": name})}
    try:
        with run_worker(argv=worker.argv, cwd=worker.cwd, env=worker.overrides(extra)) as served:
            result = client.run({"ZC_EVENTS_BACKEND_OPTIONS": extra["ZC_EVENTS_BACKEND_OPTIONS"]})
            printed = result.stdout.splitlines()
            output_matches(client.output, printed)
            spans = {json.loads(line)["name"]: json.loads(line) for line in printed[:2]}
            trace_id = "0x" + printed[-1].split()[-1]
            deadline = time.monotonic() + 60
            while served.output.count('"name": "process inventory.') < 2:
                assert time.monotonic() < deadline, served.output
                time.sleep(0.1)
            worker_spans = {
                span["name"]: span
                for span in (json.loads(line) for line in served.lines if line.startswith("{"))
            }
            assert {s["context"]["trace_id"] for s in worker_spans.values()} == {trace_id}
            send = spans["send inventory.reserve"]
            outer = worker_spans["process inventory.reserve"]
            assert outer["parent_id"] == send["context"]["span_id"]
            assert worker_spans["send inventory.price"]["parent_id"] == outer["context"]["span_id"]
            assert served.terminate(30) == 0
    finally:
        delete_broker_objects([name, f"{name}.dead"], [name, f"{name}.dead"])
