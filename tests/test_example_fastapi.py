"""examples/fastapi runs as its README says and prints what the README shows.

The test adds unique names (SERVICE_NAME, the exchange) and a free port, so that concurrent runs
do not meet, and deletes what the worker declared.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from zc_events.testing import run_worker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.rabbitmq
def test_fastapi_example(readme_steps: Callable[[str], list[Any]], output_matches: Any) -> None:
    pytest.importorskip("fastapi", reason="the example needs fastapi and uvicorn")
    from zc_events_rabbitmq.testing import delete_broker_objects

    service, api, client = readme_steps("examples/fastapi/README.md")
    name = f"zc-events-test-fastapi-{uuid.uuid4().hex[:10]}"
    port = free_port()
    extra = {"SERVICE_NAME": name, "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"exchange": name})}
    try:
        with (
            run_worker(argv=service.argv, cwd=service.cwd, env=service.overrides(extra)) as worker,
            run_worker(
                argv=api.argv,
                cwd=api.cwd,
                env=api.overrides({**extra, "UVICORN_PORT": str(port)}),
                ready="Application startup complete",
            ) as server,
        ):
            result = client.run({"API_URL": f"http://127.0.0.1:{port}"})
            output_matches(client.output, result.stdout.splitlines())
            deadline = time.monotonic() + 30
            while "audit: {'reserved': {'item': 'cake'" not in worker.output:
                assert time.monotonic() < deadline, worker.output
                time.sleep(0.1)
            # uvicorn shuts down gracefully (the lifespan closes the client), then re-raises
            # SIGTERM: its exit status is -15.
            assert server.terminate(30) in (0, -15), server.output
            assert "Application shutdown complete" in server.output, server.output
            assert worker.terminate(30) == 0, worker.output
    finally:
        delete_broker_objects([name, f"{name}.dead"], [name, f"{name}.dead"])
