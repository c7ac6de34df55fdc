"""examples/django runs as its README says and prints what the README shows.

The test adds unique names (SERVICE_NAME, the exchange, the sqlite file) so that concurrent runs
do not meet, and deletes what the worker declared.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from zc_events.testing import run_worker


@pytest.mark.rabbitmq
def test_django_example(
    readme_steps: Callable[[str], list[Any]], output_matches: Any, tmp_path: Path
) -> None:
    from zc_events_rabbitmq.testing import delete_broker_objects

    migrate, worker, client = readme_steps("examples/django/README.md")
    name = f"zc-events-test-example-{uuid.uuid4().hex[:10]}"
    extra = {
        "BOOKSHOP_DB": str(tmp_path / "books.sqlite3"),
        "SERVICE_NAME": name,
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"exchange": name}),
        "DJANGO_SETTINGS_MODULE": None,  # manage.py picks the example's settings
    }
    migrate.run(extra)
    try:
        with run_worker(argv=worker.argv, cwd=worker.cwd, env=worker.overrides(extra)) as served:
            result = client.run(extra)
            output_matches(client.output, result.stdout.splitlines())
            assert served.terminate(30) == 0
    finally:
        delete_broker_objects([name, f"{name}.dead"], [name, f"{name}.dead"])
