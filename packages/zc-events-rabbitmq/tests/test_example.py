"""examples/rabbitmq runs as its README says (on unique exchange and queue names)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from zc_events.testing import run_worker

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "rabbitmq"


@pytest.mark.rabbitmq
def test_worker_and_client(service: Any) -> None:
    if not EXAMPLE.exists():
        pytest.skip(f"{EXAMPLE} is not there")
    env = {
        "ZC_EVENTS_BACKEND": "rabbitmq",
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"exchange": service.exchange}),
        "SERVICE_NAME": service.name,
    }
    with run_worker(["service"], backend="rabbitmq", cwd=EXAMPLE, env=env) as worker:
        with service.client() as client:
            service.wait_ready(client, "calculator.log", worker=worker)
        result = subprocess.run(
            [sys.executable, "client.py"],
            cwd=EXAMPLE,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == "get calculator.add -> data={'answer': 3} has_errors=False"
        assert lines[1] == "get calculator.add, y missing -> has_errors=True KeyError"
        assert lines[3] == "batch of 100 post_no_wait -> confirmed"
        assert lines[4].startswith("get nobody.handles.this -> NoRouteError: ")
        assert worker.terminate(20) == 0
