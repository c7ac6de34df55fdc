from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from zc_events.cli import build_parser, main
from zc_events.testing import run_worker

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
        (
            ["call", "nobody"],
            "no handler is registered for key 'nobody' in this process: the 'memory' backend is "
            "in-process",
        ),
        (["call", "x", "-H", "novalue"], "header must look like name=value"),
        (["call", "x", "--timeout", "-1"], "must be positive"),
        (["worker", "no_such_module_here"], "cannot import handler module 'no_such_module_here'"),
        (["worker", "--backend", "memory"], "no handlers are registered"),
    ],
)
def test_bad_input_is_one_clear_line(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_setting_module_is_one_line() -> None:
    result = run("call", "x", env={"ZC_EVENTS_SETTINGS": "missing.settings"})
    assert result.returncode == 2
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
    with run_worker([HANDLERS], backend="memory", ready="serving conformance.add") as worker:
        assert worker.terminate(timeout=30) == 0


@pytest.mark.parametrize(
    "env",
    [{}, {"ZC_EVENTS_BACKEND": "memory"}],
    ids=["no backend set", "ZC_EVENTS_BACKEND=memory"],
)
def test_worker_refuses_the_memory_backend_unless_asked(env: dict[str, str]) -> None:
    result = run("worker", HANDLERS, env=env)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert "'memory' backend, which nothing outside this process can reach" in line
    assert "set ZC_EVENTS_BACKEND" in line
    assert "pass --backend memory to run on it anyway" in line


def test_a_backend_that_lacks_a_worker_option_says_so() -> None:
    result = run("worker", "--backend", "memory", "--concurrency", "2", "--url", "x", HANDLERS)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "zc-events: error: the 'memory' backend does not take --concurrency, --url: drop the "
        "option(s) or choose a backend that has them (rabbitmq takes --concurrency, --prefetch, "
        "--url and --queue; http takes --bind and --concurrency)"
    ]


@pytest.mark.parametrize(
    ("argv", "verbose", "level"),
    [
        (["-v", "worker", "m"], True, None),
        (["worker", "-v", "m"], True, None),
        (["worker", "m", "--verbose"], True, None),
        (["worker", "--log-level", "debug", "m"], False, "DEBUG"),
        (["--log-level", "error", "call", "k"], False, "ERROR"),
        (["call", "k", "-l", "warning"], False, "WARNING"),
        (["call", "k"], False, None),
    ],
)
def test_logging_options_go_before_or_after_the_subcommand(
    argv: list[str], verbose: bool, level: str | None
) -> None:
    args = build_parser().parse_args(argv)
    assert (args.verbose, args.log_level) == (verbose, level)


def test_worker_help_explains_module_service_name_and_the_backend() -> None:
    result = run("worker", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for phrase in [
        "MODULE is a Python module",
        "@zc_events.handler",
        "finds modules in the current directory",
        "SERVICE_NAME",
        "names the queue the worker consumes",
        "ZC_EVENTS_BACKEND",
        "nothing outside this process can reach it",
        "--concurrency N",
        "--prefetch N",
        "--url URL",
        "--queue NAME",
        "--bind HOST:PORT",
        "--log-level LEVEL",
        "Exit status",
        "examples:",
    ]:
        assert phrase in text, phrase


def test_the_zc_events_script_imports_handler_modules_from_the_current_directory(
    tmp_path: Path,
) -> None:
    script = shutil.which("zc-events", path=str(Path(sys.executable).parent))
    assert script is not None, "the zc-events console script is not installed"
    module = f"cwd_handlers_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "import zc_events\n\n\n"
        "@zc_events.handler('cwd.ping')\n"
        "def ping(request):\n"
        "    return 'pong'\n"
    )
    argv = [script, "worker", "--backend", "memory", module]
    # Ready means it imported the module from its working directory (no PYTHONPATH).
    with run_worker(argv=argv, cwd=tmp_path, env={"PYTHONPATH": None}, ready="serving") as worker:
        assert "serving cwd.ping on backend 'memory'" in worker.lines[0], worker.output
        assert worker.terminate(timeout=30) == 0


_LOGGING_CHILD = """
import logging, sys
import zc_events.cli as cli

def run(args):
    log = logging.getLogger("child")
    log.info("first")
    print("logged", flush=True)
    sys.stdin.readline()
    log.info("second")
    log.warning("third")
    print("warned", flush=True)
    sys.stdin.readline()
    log.info("last")
    return 0

cli._run = run
sys.exit(cli.main(["worker", "any.module"]))
"""


def test_worker_log_lines_are_batched_but_arrive_soon_in_order_and_all_at_exit() -> None:
    import queue
    import threading

    proc = subprocess.Popen(
        [sys.executable, "-c", _LOGGING_CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True)
    reader.start()

    def next_line() -> str:
        return lines.get(timeout=10).rstrip("\n")

    try:
        assert proc.stdout.readline() == "logged\n"
        # Written by the flushing thread while the process goes on (not only at exit).
        assert next_line().endswith("INFO child: first")
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline() == "warned\n"
        # A WARNING writes at once, after the INFO line before it.
        assert next_line().endswith("INFO child: second")
        assert next_line().endswith("WARNING child: third")
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.wait(10) == 0
        reader.join(10)
        assert next_line().endswith("INFO child: last")
    finally:
        proc.kill()
        proc.wait()
