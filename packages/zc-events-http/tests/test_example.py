"""examples/http runs exactly as its README says."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "examples" / "http" / "README.md"


def blocks(text: str) -> list[str]:
    return re.findall(r"```(?:console)?\n(.*?)```", text, re.S)


def test_the_example_runs_as_its_readme_says() -> None:
    worker_cmd, client_cmd, expected = (b.strip() for b in blocks(README.read_text())[:3])
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for name in list(env):
        if name.startswith("ZC_EVENTS_") and name != "ZC_EVENTS_REQUIRE_SERVICES":
            del env[name]
    worker = subprocess.Popen(
        ["bash", "-c", f"exec bash -c {worker_cmd!r}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", 8123), timeout=0.5).close()
                break
            except OSError:
                assert worker.poll() is None, worker.communicate()[0]
                assert time.monotonic() < deadline, "the example service did not start"
                time.sleep(0.1)
        client = subprocess.run(
            ["bash", "-c", client_cmd],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert client.returncode == 0, client.stderr
        assert client.stdout.strip().splitlines() == expected.splitlines()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        output = worker.communicate(timeout=30)[0]
    assert worker.returncode == 0, output
    assert "audit: {'by': 'client'}" in output
