"""zc_events.testing.run_worker: starts a process, waits until it is ready, always cleans up.

The processes here are small Python scripts standing in for a worker (what they print is what a
worker's log would show); the packages' tests run it on real ``zc-events worker`` processes.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from zc_events import NoRouteError
from zc_events.testing import (
    READY_MARKER,
    WorkerProcess,
    run_worker,
    wait_for,
    wait_until_served,
)


def script(code: str) -> list[str]:
    return [sys.executable, "-c", code]


# Prints its start-up lines, then serves until SIGTERM, then says so and exits 0.
GRACEFUL = script(
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: (print('stopped consuming', flush=True), "
    "sys.exit(0)))\n"
    "print('connecting', flush=True)\n"
    "time.sleep(0.2)\n"
    "print('INFO zc_events.worker: consuming q at amqp://x', flush=True)\n"
    "while True: time.sleep(1)\n"
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_waits_for_the_ready_line_and_stops_the_process_afterwards() -> None:
    with run_worker(argv=GRACEFUL) as worker:
        assert isinstance(worker, WorkerProcess)
        assert "consuming q" in worker.output  # ready means the line was printed
        assert worker.poll() is None and alive(worker.pid)
        pid = worker.pid
    assert worker.returncode == 0  # stopped with SIGTERM, exited on its own
    assert worker.output.splitlines()[-1] == "stopped consuming"
    assert not alive(pid)


def test_terminate_returns_the_exit_status() -> None:
    with run_worker(argv=GRACEFUL) as worker:
        assert worker.terminate() == 0
        assert worker.wait_for_output("stopped consuming", timeout=5)


def test_kill_is_a_crash() -> None:
    with run_worker(argv=GRACEFUL) as worker:
        assert worker.kill() == -signal.SIGKILL
    assert "stopped consuming" not in worker.output


def test_a_process_that_exits_before_it_is_ready_fails_with_its_output() -> None:
    failing = script("print('ConfigurationError: no handlers are registered'); raise SystemExit(2)")
    with pytest.raises(RuntimeError) as info, run_worker(argv=failing):
        pytest.fail("the block must not run")
    message = str(info.value)
    assert "exited with status 2 before it was ready" in message
    assert "no handlers are registered" in message


def test_a_process_that_never_gets_ready_is_killed_after_the_timeout() -> None:
    silent = script("import time\nprint('connecting', flush=True)\ntime.sleep(600)")
    expected = r"did not print 'consuming' within 0.5 s"
    with (
        pytest.raises(RuntimeError, match=expected) as info,
        run_worker(argv=silent, timeout=0.5, stop_timeout=5),
    ):
        pass
    assert "connecting" in str(info.value)


def test_a_process_that_ignores_sigterm_is_killed() -> None:
    stubborn = script(
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('consuming', flush=True)\n"
        "time.sleep(600)\n"
    )
    with run_worker(argv=stubborn, stop_timeout=0.5) as worker:
        pass
    assert worker.returncode == -signal.SIGKILL
    with run_worker(argv=stubborn, stop_timeout=0.5) as worker:
        with pytest.raises(RuntimeError, match="did not exit within 0.5 s of SIGTERM"):
            worker.terminate(timeout=0.5)
        assert worker.returncode == -signal.SIGKILL


def test_the_process_is_cleaned_up_when_the_block_raises() -> None:
    with pytest.raises(ZeroDivisionError), run_worker(argv=GRACEFUL) as worker:
        1 / 0  # noqa: B018
    assert worker.returncode == 0


def test_a_readiness_check_instead_of_a_line(tmp_path: Path) -> None:
    flag = tmp_path / "ready"
    writer = script(
        f"import time, pathlib\ntime.sleep(0.3)\npathlib.Path({str(flag)!r}).touch()\n"
        "time.sleep(600)"
    )
    checks: list[bool] = []

    def check() -> bool:
        checks.append(flag.exists())
        if not flag.exists():
            raise ConnectionError("not yet")  # a failing check means "not ready yet"
        return True

    with run_worker(argv=writer, ready=check):
        assert flag.exists()
    assert checks[-1] is True


def test_environment_cwd_and_pythonpath(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZC_TEST_DROP_ME", "x")
    (tmp_path / "helper_mod_for_run_worker.py").write_text("VALUE = 'from pythonpath'\n")
    code = (
        "import os, helper_mod_for_run_worker as h\n"
        "print(os.environ.get('ZC_TEST_SET'), os.environ.get('ZC_TEST_DROP_ME'), "
        "os.getcwd(), h.VALUE, flush=True)\n"
        "print('consuming', flush=True)\n"
        "import time; time.sleep(600)"
    )
    env = {"ZC_TEST_SET": "yes", "ZC_TEST_DROP_ME": None}
    with run_worker(argv=script(code), env=env, cwd=tmp_path, pythonpath=[tmp_path]) as worker:
        first = worker.lines[0]
    assert first == f"yes None {tmp_path} from pythonpath"


def test_default_command_is_the_zc_events_worker() -> None:
    # No handlers: the real worker refuses to start, and says why.
    with (
        pytest.raises(RuntimeError, match="no handlers are registered") as info,
        run_worker(backend="memory", env={"ZC_EVENTS_HANDLERS": None}),
    ):
        pass
    assert "-m zc_events worker --backend memory)" in str(info.value)
    assert READY_MARKER == "consuming"


def test_argv_or_modules_not_both() -> None:
    with pytest.raises(ValueError, match="not both"), run_worker(["m"], argv=GRACEFUL):
        pass


def test_wait_for_returns_the_first_true_value_or_fails_naming_what() -> None:
    values = iter([0, None, "", "done"])
    assert wait_for(lambda: next(values), timeout=5, interval=0.01) == "done"
    with pytest.raises(AssertionError, match="timed out after 0.1 s waiting for the moon"):
        wait_for(lambda: False, timeout=0.1, what="the moon", interval=0.01)


def test_wait_for_can_treat_exceptions_as_not_yet() -> None:
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not bound yet")
        return "bound"

    assert wait_for(flaky, timeout=5, interval=0.01, ignore=(ConnectionError,)) == "bound"
    with pytest.raises(KeyError):  # other exceptions propagate
        wait_for(lambda: {}["x"], timeout=5, ignore=(ConnectionError,))


class _Client:
    """Answers the third GET; records what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, float]] = []

    def get(self, key: str, data: object = None, timeout: float = 0) -> str:
        self.calls.append((key, data, timeout))
        if len(self.calls) < 3:
            raise NoRouteError("not bound yet", key)
        return "answered"


def test_wait_until_served_calls_until_answered() -> None:
    client = _Client()
    wait_until_served(client, "svc.ping", data={"n": 1}, timeout=10)
    assert client.calls == [("svc.ping", {"n": 1}, 1)] * 3


def test_wait_until_served_fails_at_once_when_the_worker_exits() -> None:
    class Never(_Client):
        def get(self, key: str, data: object = None, timeout: float = 0) -> str:
            raise NoRouteError("nobody", key)

    dying = script("print('connecting', flush=True); raise SystemExit(3)")
    with (
        run_worker(argv=dying, ready=None) as worker,
        pytest.raises(RuntimeError, match="exited with status 3"),
    ):
        wait_until_served(Never(), timeout=60, worker=worker)
    with pytest.raises(AssertionError, match="an answer to 'conformance.echo'"):
        wait_until_served(Never(), timeout=0.2)


def test_a_real_zc_events_worker_is_ready_on_its_consuming_line() -> None:
    with run_worker(["zc_events.testing.handlers"], backend="memory") as worker:
        assert "consuming in-process" in worker.output
        assert worker.terminate() == 0
