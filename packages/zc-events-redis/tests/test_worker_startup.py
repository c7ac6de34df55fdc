"""Worker start-up: it says "consuming" only once Redis answered; a refusal is one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from zc_events.testing import run_worker

pytestmark = pytest.mark.redis


def env(service: Any, url: str) -> dict[str, str]:
    return {
        "ZC_EVENTS_BACKEND": "redis",
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"prefix": service.prefix}),
        "ZC_EVENTS_REDIS_URL": url,
        "SERVICE_NAME": service.name,
    }


def test_unreachable_redis_is_retried_with_one_warning_per_attempt(service: Any) -> None:
    with run_worker(
        ["zc_events.testing.handlers"], env=env(service, "redis://127.0.0.1:1/0"), ready=None
    ) as worker:
        assert worker.wait_for_output("cannot connect to Redis at redis://127.0.0.1:1/0", 60)
        assert worker.wait_for_output("retrying in", timeout=60)
        assert worker.terminate() == 0
    assert "consuming" not in worker.output
    assert "Traceback" not in worker.output


def test_refused_credentials_exit_2_with_one_line(service: Any) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "zc_events", "worker", "zc_events.testing.handlers"],
        env={**os.environ, **env(service, "redis://nobody:s3cret@127.0.0.1:6379/0")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [errors[0]] and "refused the credentials" in errors[0], result.stderr
    assert "s3cret" not in result.stderr
    assert "Traceback" not in result.stderr
    assert service.redis_keys() == []
