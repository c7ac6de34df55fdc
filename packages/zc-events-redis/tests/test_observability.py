"""Health checks and dead-letter tools on the redis backend, against real worker processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

from zc_events import Envelope

pytestmark = pytest.mark.redis

REDIS_URL = "redis://127.0.0.1:6379/0"


def cli(service: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ZC_EVENTS_BACKEND": "redis",
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps(service.options()),
        "SERVICE_NAME": f"{service.name}-cli",
    }
    return subprocess.run(
        [sys.executable, "-m", "zc_events", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_health_answers_while_a_worker_runs(service: Any) -> None:
    worker = service.start()
    with service.client() as client:
        service.wait_ready(client)
    done = cli(service, "health", service.name, "--timeout", "10")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"ok: {service.name!r} worker pid {worker.pid} ")
    worker.terminate()
    done = cli(service, "health", service.name, "--timeout", "2")
    assert done.returncode == 1 and done.stdout.startswith("unhealthy: ")


def test_dead_list_and_replay(service: Any, redis_client: Any, tmp_path: Any) -> None:
    worker = service.start(("zc_events.testing.handlers",))
    with service.client() as client:
        service.wait_ready(client)
    # A message the worker cannot read: it dead-letters it.
    redis_client.xadd(f"{service.prefix}:k:conformance.echo", {"e": b"not json"})
    dead = f"{service.prefix}:dead:{service.name}"
    deadline = time.monotonic() + 30
    while redis_client.xlen(dead) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    # A readable one, dead-lettered as the worker does, to replay.
    envelope = Envelope.create("conformance.echo", "POST", {"replayed": True})
    redis_client.xadd(
        dead,
        {
            "stream": f"{service.prefix}:k:conformance.echo",
            "entry": "1-0",
            "reason": "the handler failed",
            "deliveries": 1,
            "body": envelope.encode(),
            "at": repr(time.time()),
        },
    )
    listed = cli(service, "dead", "list", service.name)
    assert listed.returncode == 0, listed.stderr
    assert "decoding failed" in listed.stdout
    line = next(x for x in listed.stdout.splitlines() if x.startswith(envelope.id))
    assert "conformance.echo" in line and "POST" in line and "the handler failed" in line
    assert redis_client.xlen(dead) == 2

    replayed = cli(service, "dead", "replay", service.name, "--id", envelope.id)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert redis_client.xlen(dead) == 1
    # The worker handled it (its one INFO line per message names the id).
    assert worker.wait_for_output(f"'conformance.echo' id {envelope.id}", timeout=30), worker.output
    everything = cli(service, "dead", "replay", service.name, "--all")
    assert everything.returncode == 1 and "not a zc-events message" in everything.stderr
    assert redis_client.xlen(dead) == 1
    assert worker.poll() is None
