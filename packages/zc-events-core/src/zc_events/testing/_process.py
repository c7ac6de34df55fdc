"""``run_worker``: a real worker process for tests, started, awaited and always cleaned up."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["READY_MARKER", "WorkerProcess", "run_worker", "wait_for", "wait_until_served"]

#: What a worker logs once it is connected and consuming (``zc-events worker`` and every backend's
#: ``serve`` log a line containing it), so a test can wait for it.
READY_MARKER = "consuming"


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 30.0,
    what: str = "condition",
    interval: float = 0.05,
    *,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``predicate`` until it returns a true value, and return that value.

    Exceptions of the types in ``ignore`` count as "not yet" (e.g. ``ignore=(NoRouteError,)``
    while a worker binds its queue). Raises AssertionError naming ``what`` after ``timeout``
    seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value: T | None
        try:
            value = predicate()
        except ignore:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def wait_until_served(
    client: Any,
    key: str = "conformance.echo",
    *,
    data: Any = None,
    timeout: float = 30.0,
    worker: WorkerProcess | None = None,
) -> None:
    """GET ``key`` through ``client`` (an :class:`~zc_events.EventClient`) until it is answered:
    the worker has bound its queue and consumes. Each attempt waits at most one second.

    With ``worker``, fails at once (with its output) if that process exits; else raises
    AssertionError after ``timeout`` seconds.
    """

    def answered() -> object:
        return client.get(key, data=data, timeout=1)

    if worker is not None:
        worker.wait_ready(answered, timeout)
    else:
        wait_for(answered, timeout, f"an answer to {key!r}", ignore=(Exception,))


#: How the last lines of output are shown in errors.
_TAIL_LINES = 60


class WorkerProcess:
    """A worker subprocess whose output (stdout and stderr, merged) is collected line by line."""

    def __init__(self, argv: Sequence[str], process: subprocess.Popen[str]) -> None:
        self.argv = list(argv)
        self.process = process
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(
            target=self._read, name=f"run_worker-{process.pid}", daemon=True
        )
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:  # end of output: the process is exiting
            self._changed.notify_all()

    # -- what the test sees ----------------------------------------------------------------
    @property
    def pid(self) -> int:
        """The process id."""
        return self.process.pid

    @property
    def lines(self) -> list[str]:
        """The output lines so far (a copy)."""
        with self._changed:
            return list(self._lines)

    @property
    def output(self) -> str:
        """Everything the process printed so far."""
        return "\n".join(self.lines)

    @property
    def returncode(self) -> int | None:
        """The exit status, or None while it runs (negative: killed by that signal)."""
        return self.process.poll()

    def poll(self) -> int | None:
        """Like :meth:`subprocess.Popen.poll`."""
        return self.process.poll()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to exit on its own; return its exit status.

        Raises :class:`subprocess.TimeoutExpired` after ``timeout`` seconds.
        """
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def wait_for_output(self, text: str, timeout: float = 30.0) -> bool:
        """True once a line containing ``text`` was printed (within ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                if any(text in line for line in self._lines[seen:]):
                    return True
                seen = len(self._lines)
                left = deadline - time.monotonic()
                if left <= 0 or not self._reader.is_alive():
                    return any(text in line for line in self._lines[seen:])
                self._changed.wait(min(left, 0.5))

    def wait_ready(
        self, ready: str | Callable[[], object] = READY_MARKER, timeout: float = 60.0
    ) -> None:
        """Wait until the worker is ready: a line containing ``ready`` was printed, or the
        callable ``ready()`` returned a true value (exceptions count as "not yet").

        Raises RuntimeError, with the output, if the process exits first or ``timeout`` passes.
        """
        deadline = time.monotonic() + timeout
        what = f"print {ready!r}" if isinstance(ready, str) else "pass its readiness check"
        while True:
            if isinstance(ready, str):
                if self.wait_for_output(ready, min(0.5, max(deadline - time.monotonic(), 0))):
                    return
            else:
                try:
                    if ready():
                        return
                except Exception:  # not ready yet (e.g. the queue is not bound)
                    pass
            if self.poll() is not None:
                self.wait(5)
                raise RuntimeError(
                    f"worker {self._describe()} exited with status {self.returncode} before it "
                    f"was ready (waiting for it to {what}); output:\n{self._tail()}"
                )
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"worker {self._describe()} did not {what} within {timeout:g} s; "
                    f"output:\n{self._tail()}"
                )
            if not isinstance(ready, str):
                time.sleep(0.1)

    # -- stopping --------------------------------------------------------------------------
    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the process to exit (a graceful stop); return its exit status.

        If it is still running after ``timeout`` seconds it is killed and RuntimeError is raised.
        """
        if self.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(
                f"worker {self._describe()} did not exit within {timeout:g} s of SIGTERM; "
                f"killed it. Output:\n{self._tail()}"
            ) from None

    def kill(self) -> int:
        """SIGKILL (as a crash would: nothing is acknowledged) and reap; return the status."""
        if self.poll() is None:
            self.process.kill()
        return self.wait()

    def _stop(self, timeout: float) -> None:
        """Stop the process however it takes, and release its pipe (never raises)."""
        try:
            if self.poll() is None:
                with contextlib.suppress(RuntimeError):  # it did not stop: it was killed
                    self.terminate(timeout)
            self.process.wait()
        finally:
            self._reader.join(5)
            if self.process.stdout is not None:
                self.process.stdout.close()

    # -- messages --------------------------------------------------------------------------
    def _describe(self) -> str:
        command = shlex.join([os.path.basename(self.argv[0]), *self.argv[1:]])
        if len(command) > 120:
            command = command[:117] + "..."
        return f"pid {self.pid} ({command})"

    def _tail(self) -> str:
        lines = self.lines
        cut = lines[-_TAIL_LINES:]
        skipped = f"[{len(lines) - len(cut)} earlier lines]\n" if len(lines) > len(cut) else ""
        return skipped + "\n".join(cut)

    def __repr__(self) -> str:
        return f"<WorkerProcess pid={self.pid} returncode={self.returncode}>"


@contextmanager
def run_worker(
    modules: Sequence[str] = (),
    *,
    backend: str | None = None,
    argv: Sequence[str] | None = None,
    env: Mapping[str, str | None] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    pythonpath: Sequence[str | os.PathLike[str]] = (),
    ready: str | Callable[[], object] | None = READY_MARKER,
    timeout: float = 60.0,
    stop_timeout: float = 30.0,
) -> Iterator[WorkerProcess]:
    """Run a worker process for the length of a ``with`` block::

        with run_worker(["myservice.handlers"], backend="rabbitmq",
                        env={"SERVICE_NAME": "orders-test-1234"}) as worker:
            ...                      # the worker consumes
            worker.terminate()       # optional: SIGTERM, returns the exit status

    Starts ``python -m zc_events worker [--backend BACKEND] MODULE...``, or ``argv`` (any
    command: ``manage.py zc_events_worker``, ``celery -A proj worker``), with this process's
    environment plus ``env`` (a value of None removes a variable) and ``pythonpath`` prepended to
    ``PYTHONPATH``, in ``cwd``. Then waits until it is ready: until a line of its output contains
    ``ready`` (default ``"consuming"``, which every zc-events worker logs once it consumes), or
    until the callable ``ready()`` returns a true value; ``ready=None`` does not wait.

    Yields a :class:`WorkerProcess` (``pid``, ``output``, ``wait_for_output()``, ``terminate()``,
    ``kill()``). On leaving the block the process is stopped (SIGTERM, then SIGKILL after
    ``stop_timeout`` seconds) and reaped, whatever happened. Raises RuntimeError, with the
    output, if the process exits before it is ready or is not ready within ``timeout`` seconds.
    """
    if argv is None:
        argv = [sys.executable, "-m", "zc_events", "worker"]
        if backend is not None:
            argv += ["--backend", backend]
        argv += list(modules)
    elif modules or backend is not None:
        raise ValueError("run_worker() takes argv, or modules and backend, not both")
    environment = dict(os.environ)
    environment["PYTHONUNBUFFERED"] = "1"  # output as it happens, for readiness and errors
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    if pythonpath:
        environment["PYTHONPATH"] = os.pathsep.join(
            [*map(str, pythonpath), *filter(None, [environment.get("PYTHONPATH")])]
        )
    process = subprocess.Popen(
        list(argv),
        env=environment,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    worker = WorkerProcess(argv, process)
    try:
        if ready is not None:
            worker.wait_ready(ready, timeout)
        yield worker
    finally:
        worker._stop(stop_timeout)
