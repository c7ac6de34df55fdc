"""Fixtures: real ``zc-events worker --backend http`` processes on free local ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HttpWorker:
    """A worker subprocess serving over HTTP."""

    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the worker ignored signal {sig}:\n{self.log}") from None


def start_worker(
    tmp_path: Path,
    modules: list[str],
    *,
    options: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    scheme: str = "http",
) -> HttpWorker:
    port = free_port()
    log_path = tmp_path / f"worker-{port}.log"
    environ = {
        **os.environ,
        "ZC_EVENTS_BACKEND": "http",
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"bind": f"127.0.0.1:{port}", **(options or {})}),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "zc_events", "worker", *modules],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environ,
            cwd=str(Path(__file__).parent),
        )
    worker = HttpWorker(proc, f"{scheme}://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the worker exited with {proc.returncode}:\n{worker.log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return worker
        except OSError:
            time.sleep(0.05)
    worker.stop(signal.SIGKILL)
    raise AssertionError(f"the worker did not listen on {port}:\n{worker.log}")


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[HttpWorker] = []

    def factory(*modules: str, **kwargs: Any) -> HttpWorker:
        worker = start_worker(tmp_path, list(modules) or ["zc_events.testing.handlers"], **kwargs)
        started.append(worker)
        return worker

    yield factory
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait()


@pytest.fixture(scope="module")
def http_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpWorker]:
    worker = start_worker(tmp_path_factory.mktemp("http"), ["zc_events.testing.handlers"])
    yield worker
    worker.stop()
