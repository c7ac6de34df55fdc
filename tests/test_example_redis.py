"""examples/redis works as its README says: a worker subprocess, then the client's output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from zc_events.testing import run_worker

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "redis"
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.mark.redis
def test_redis_example(tmp_path: Path) -> None:
    import redis

    prefix = f"zc-events-test-example-{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "ZC_EVENTS_BACKEND": "redis",
        # a unique prefix so that concurrent runs do not meet; the README uses the default
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"prefix": prefix}),
        "ZC_EVENTS_REDIS_URL": REDIS_URL,
    }
    r = redis.Redis.from_url(REDIS_URL)
    worker_env = {**env, "SERVICE_NAME": "calculator"}
    try:
        with run_worker(["service"], cwd=EXAMPLE, env=worker_env, timeout=120) as worker:
            deadline = time.monotonic() + 60
            while not r.exists(f"{prefix}:k:calculator.log"):  # the worker created its groups
                assert time.monotonic() < deadline, worker.output
                time.sleep(0.1)
            client = subprocess.run(
                [sys.executable, "client.py"],
                cwd=EXAMPLE,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert client.returncode == 0, client.stderr
            lines = client.stdout.splitlines()
            assert lines[0] == "get calculator.add -> data={'answer': 3} has_errors=False"
            assert lines[1] == "get calculator.add, y missing -> has_errors=True KeyError"
            assert lines[2].startswith("post_no_wait calculator.log -> ")
            assert lines[3] == "batch of 100 post_no_wait -> added in one round trip"
            assert lines[4] == (
                "get nobody.handles.this -> NoRouteError: no service handles key "
                "'nobody.handles.this' (no consumer group reads its stream)"
            )
            while worker.output.count("log: {'event':") < 101:  # the handler logged them all
                assert time.monotonic() < deadline + 60, worker.output
                time.sleep(0.1)
            assert worker.terminate(30) == 0
    finally:
        keys = list(r.scan_iter(match=f"{prefix}:*"))
        if keys:
            r.delete(*keys)
        r.close()
