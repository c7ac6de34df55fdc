"""examples/django works as its README says: the worker serves the viewset, the client calls it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from zc_events.testing import run_worker

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "django"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
pytest.importorskip("zc_events_rabbitmq", reason="needs the rabbitmq backend (zc-events-rabbitmq)")


@pytest.mark.rabbitmq
def test_example_worker_and_client(tmp_path: Path) -> None:
    name = f"zc-events-django-example-{uuid.uuid4().hex[:12]}"
    settings = {
        "BOOKSHOP_DB": str(tmp_path / "books.sqlite3"),
        "SERVICE_NAME": name,
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"url": AMQP_URL, "exchange": name}),
    }
    env = {**os.environ, **settings}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    run = {"cwd": EXAMPLE, "env": env, "timeout": 120}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--run-syncdb", "-v0"], check=True, **run
    )
    manage = [sys.executable, "manage.py", "zc_events_worker"]
    worker_env = {**settings, "DJANGO_SETTINGS_MODULE": None}
    try:
        with run_worker(argv=manage, cwd=EXAMPLE, env=worker_env):  # ready: it consumes
            client = subprocess.run(
                [sys.executable, "client.py"], capture_output=True, text=True, **run
            )
            assert client.returncode == 0, client.stderr
            lines = client.stdout.splitlines()
            assert "status=201 data={'id': 1, 'title': 'Dune'" in lines[1]
            assert "'author': 'Jane Austen'" in lines[5]
            assert "status=400 errors=[{'author': ['This field is required.'], 'year'" in lines[9]
            assert lines[11].strip() == "status=204 data=None"
            assert (
                lines[13].strip()
                == "status=404 errors=[{'detail': 'No Book matches the given query.'}]"
            )
    finally:
        from zc_events_rabbitmq.testing import delete_broker_objects

        delete_broker_objects([name, f"{name}.dead"], [name, f"{name}.dead"], url=AMQP_URL)
