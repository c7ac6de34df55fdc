"""examples/http runs as its README says and prints what the README shows.

The README's port is replaced by a free one, so that concurrent runs do not meet.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from zc_events.testing import run_worker

README_ADDRESS = "127.0.0.1:8123"


def test_http_example(readme_steps: Callable[[str], list[Any]], output_matches: Any) -> None:
    worker, client = readme_steps("examples/http/README.md")
    assert "worker" in worker.argv, worker.command
    assert README_ADDRESS in worker.argv, worker.command
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    argv = [address if word == README_ADDRESS else word for word in worker.argv]
    routes = client.env["ZC_EVENTS_HTTP_ROUTES"].replace(README_ADDRESS, address)
    expected = [line.replace(README_ADDRESS, address) for line in client.output]
    with run_worker(argv=argv, cwd=worker.cwd, env=worker.overrides()) as served:
        result = client.run({"ZC_EVENTS_HTTP_ROUTES": routes})
        output_matches(expected, result.stdout.splitlines())
        assert served.wait_for_output("audit: {'by': 'client'}", 30), served.output
        assert served.terminate(30) == 0
    assert f"stopped serving at http://{address}" in served.output
