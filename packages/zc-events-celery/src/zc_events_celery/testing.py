"""Helpers for testing Celery services against a real worker (not eager mode).

with celery_worker("proj.celery:app", env={"SERVICE_NAME": "orders-test"}) as worker:
    ...                  # a `celery -A proj.celery:app worker` subprocess, ready to consume
    worker.kill()        # SIGKILL, as a crash would
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress

__all__ = ["CeleryWorker", "celery_worker", "delete_amqp_entities"]


class CeleryWorker:
    """A ``celery worker`` subprocess; its log lines are collected in :attr:`lines`."""

    def __init__(self, process: subprocess.Popen[str], hostname: str) -> None:
        self.process = process
        self.hostname = hostname
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if " ready." in line:
                self._ready.set()
        self._ready.set()  # the process ended: stop waiting

    @property
    def output(self) -> str:
        """Everything the worker logged so far."""
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the worker consumes; raise RuntimeError with its log if it does not."""
        if not self._ready.wait(timeout) or self.process.poll() is not None:
            self.kill()
            raise RuntimeError(f"celery worker did not become ready:\n{self.output}")

    def wait_for_output(self, text: str, timeout: float = 10.0) -> bool:
        """True once ``text`` appears in the worker's log within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            time.sleep(0.05)
        return False

    def kill(self) -> None:
        """SIGKILL the worker (its tasks in progress are not acknowledged) and reap it."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM (warm shutdown), then SIGKILL after ``timeout``; return the exit code."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.wait(10)


@contextmanager
def celery_worker(
    app: str,
    *,
    env: Mapping[str, str] | None = None,
    queues: Sequence[str] = (),
    pool: str = "threads",
    concurrency: int = 4,
    loglevel: str = "INFO",
    pythonpath: Sequence[str | os.PathLike[str]] = (),
    extra_args: Sequence[str] = (),
    ready_timeout: float = 60.0,
) -> Iterator[CeleryWorker]:
    """Run ``celery -A app worker`` in a subprocess until the block ends (then kill it by PID).

    Mingle, gossip and heartbeats are off, so the worker neither waits for nor talks to other
    workers on the broker. ``env`` is added to this process's environment.
    """
    hostname = f"zc-events-test-{uuid.uuid4().hex[:12]}@localhost"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        "-n",
        hostname,
        "-P",
        pool,
        "-c",
        str(concurrency),
        "-l",
        loglevel,
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
        *(["-Q", ",".join(queues)] if queues else []),
        *extra_args,
    ]
    environment = {**os.environ, **(env or {})}
    if pythonpath:
        environment["PYTHONPATH"] = os.pathsep.join(
            [*map(str, pythonpath), *filter(None, [environment.get("PYTHONPATH")])]
        )
    process = subprocess.Popen(
        command,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    worker = CeleryWorker(process, hostname)
    try:
        worker.wait_ready(ready_timeout)
        yield worker
    finally:
        worker.terminate(timeout=10)


def delete_amqp_entities(
    url: str, *, queues: Sequence[str] = (), exchanges: Sequence[str] = ()
) -> None:
    """Delete queues and exchanges (that your tests created) from the broker at ``url``."""
    from kombu import Connection

    with Connection(url) as connection:
        for method, names in (("queue_delete", queues), ("exchange_delete", exchanges)):
            for name in names:
                channel = connection.channel()
                with suppress(Exception):  # already gone: the broker closed the channel
                    getattr(channel, method)(name)
                with suppress(Exception):
                    channel.close()
