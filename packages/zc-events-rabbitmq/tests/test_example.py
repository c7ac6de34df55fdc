"""examples/rabbitmq runs as its README says (on unique exchange and queue names)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "rabbitmq"


@pytest.mark.rabbitmq
def test_worker_and_client(service: Any) -> None:
    if not EXAMPLE.exists():
        pytest.skip(f"{EXAMPLE} is not there")
    env = {
        **os.environ,
        "ZC_EVENTS_BACKEND": "rabbitmq",
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"exchange": service.exchange}),
        "SERVICE_NAME": service.name,
    }
    log = service.tmp / "example-worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "zc_events", "worker", "--backend", "rabbitmq", "service"],
            cwd=EXAMPLE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        with service.client() as client:
            service.wait_ready(client, "calculator.log")
        result = subprocess.run(
            [sys.executable, "client.py"],
            cwd=EXAMPLE,
            env=env,
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
    finally:
        worker.terminate()
        assert worker.wait(20) == 0
