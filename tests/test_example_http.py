"""examples/http runs as its README says and prints what the README shows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zc_events.testing import run_worker


def test_http_example(readme_steps: Callable[[str], list[Any]], output_matches: Any) -> None:
    worker, client = readme_steps("examples/http/README.md")
    assert "worker" in worker.argv, worker.command
    with run_worker(argv=worker.argv, cwd=worker.cwd, env=worker.overrides()) as served:
        result = client.run()
        output_matches(client.output, result.stdout.splitlines())
        assert served.wait_for_output("audit: {'by': 'client'}", 30), served.output
        assert served.terminate(30) == 0
    assert "stopped serving at http://127.0.0.1:8123" in served.output
