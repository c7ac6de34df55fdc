"""Fixtures: real ``zc-events worker --backend http`` processes on free local ports."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from zc_events.testing import WorkerProcess, run_worker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HttpWorker:
    """A worker process serving over HTTP, and the base URL to route to it."""

    process: WorkerProcess
    url: str


def http_worker_env(port: int, options: dict[str, Any] | None = None) -> dict[str, str | None]:
    return {
        "ZC_EVENTS_BACKEND": "http",
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"bind": f"127.0.0.1:{port}", **(options or {})}),
    }


@pytest.fixture
def worker_factory() -> Iterator[Any]:
    """``worker_factory(*modules, options=..., scheme=...)`` starts a worker for this test."""
    with contextlib.ExitStack() as stack:

        def factory(
            *modules: str,
            options: dict[str, Any] | None = None,
            scheme: str = "http",
            env: dict[str, str] | None = None,
        ) -> HttpWorker:
            port = free_port()
            process = stack.enter_context(
                run_worker(
                    list(modules) or ["zc_events.testing.handlers"],
                    env={**http_worker_env(port, options), **(env or {})},
                )
            )
            return HttpWorker(process, f"{scheme}://127.0.0.1:{port}")

        yield factory


@pytest.fixture(scope="module")
def http_worker() -> Iterator[HttpWorker]:
    port = free_port()
    with run_worker(["zc_events.testing.handlers"], env=http_worker_env(port)) as process:
        yield HttpWorker(process, f"http://127.0.0.1:{port}")
