from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zc_events.cli import main

HANDLERS = "zc_events.testing.handlers"


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zc_events", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_call_prints_the_response_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    import zc_events.testing.handlers  # noqa: F401  (registers the handlers in-process)

    status = main(["call", "conformance.add", "-X", "get", "--data", '{"x": 1, "y": 2}'])
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    assert out == {"data": {"answer": 3}, "has_errors": False, "errors": []}


def test_call_exits_non_zero_on_remote_errors(capsys: pytest.CaptureFixture[str]) -> None:
    import zc_events.testing.handlers  # noqa: F401

    assert main(["call", "conformance.add", "--data", '{"x": 1}']) == 1
    assert json.loads(capsys.readouterr().out)["errors"][0]["type"] == "KeyError"


def test_call_headers_and_no_wait(capsys: pytest.CaptureFixture[str]) -> None:
    import zc_events.testing.handlers  # noqa: F401

    assert main(["call", "conformance.echo", "-H", "pk=7", "-H", "query_string=a=b"]) == 0
    assert json.loads(capsys.readouterr().out)["data"]["headers"] == {
        "pk": "7",
        "query_string": "a=b",
    }
    assert main(["call", "conformance.record", "--no-wait", "--data", '{"token": "cli"}']) == 0
    assert "id" in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["call", "x", "--data", "{bad"], "--data is not valid JSON"),
        (
            ["call", "x", "--backend", "rabbit"],
            "no backend named 'rabbit' is installed. Did you mean",
        ),
        (["call", "nobody"], "no handler is registered for key 'nobody'"),
        (["call", "x", "-H", "novalue"], "header must look like name=value"),
        (["call", "x", "--timeout", "-1"], "must be positive"),
        (["worker", "no_such_module_here"], "cannot import handler module 'no_such_module_here'"),
        (["worker"], "no handlers are registered"),
    ],
)
def test_bad_input_is_one_clear_line(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_setting_module_is_one_line() -> None:
    result = run("call", "x", env={"ZC_EVENTS_SETTINGS": "missing.settings"})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "zc-events: error: ZC_EVENTS_SETTINGS names module 'missing.settings', which cannot be "
        "imported: No module named 'missing'"
    ]


def test_backends_lists_memory() -> None:
    result = run("backends")
    assert result.returncode == 0
    assert "memory\tzc-events-core" in result.stdout.splitlines()


def test_demo_prints_the_quickstart() -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    assert "data={'answer': 2} has_errors=False" in result.stdout
    assert "data=None has_errors=True errors[0]={'type': 'KeyError'" in result.stdout


def test_worker_exits_zero_on_sigterm(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "zc_events", "worker", HANDLERS],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        assert proc.stderr is not None
        line = ""
        while time.monotonic() < deadline and "serving" not in line:
            line = proc.stderr.readline()
        assert "serving conformance.add" in line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
