"""Fixtures: real ``zc-events worker --backend redis`` subprocesses (``run_worker``) on Redis.

Every test service has its own key prefix (with a uuid) and its own connection names; every key
under the prefix is deleted afterwards, and fault tests kill only their own connections.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import zc_events.testing
from zc_events.testing import WorkerProcess, run_worker

REDIS_URL = "redis://127.0.0.1:6379/0"
HERE = Path(__file__).resolve().parent


def unique(what: str) -> str:
    return f"zc-events-test-{what}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def redis_client() -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@dataclass
class Service:
    """A service served by worker subprocesses, under a unique key prefix."""

    name: str
    prefix: str
    client_name: str
    tmp: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    _processes: ExitStack = field(default_factory=ExitStack)

    def options(self, **options: Any) -> dict[str, Any]:
        return {"url": REDIS_URL, "prefix": self.prefix, **options}

    def start(
        self,
        modules: tuple[str, ...] = ("zc_events.testing.handlers",),
        extra_env: dict[str, str] | None = None,
        **options: Any,
    ) -> WorkerProcess:
        """A ``zc-events worker --backend redis`` process, running until :meth:`cleanup`."""
        opts = self.options(client_name=f"{self.client_name}-worker", **options)
        env = {
            "ZC_EVENTS_BACKEND": "redis",
            "ZC_EVENTS_BACKEND_OPTIONS": json.dumps(opts),
            "SERVICE_NAME": self.name,
            **(extra_env or {}),
        }
        worker = self._processes.enter_context(run_worker(modules, env=env, pythonpath=[HERE]))
        self.workers.append(worker)
        return worker

    def client(self, **options: Any) -> Any:
        from zc_events import EventClient, Settings

        opts = self.options(client_name=f"{self.client_name}-client", **options)
        return EventClient("redis", settings=Settings({"SERVICE_NAME": self.name}), **opts)

    def wait_ready(
        self,
        client: Any,
        key: str = "conformance.echo",
        timeout: float = 60,
        worker: WorkerProcess | None = None,
    ) -> None:
        """Call ``key`` until a worker answers; fail at once if ``worker`` (default: the last one
        :meth:`start` started) exits."""
        worker = worker or (self.workers[-1] if self.workers else None)
        zc_events.testing.wait_until_served(client, key, timeout=timeout, worker=worker)

    def redis_keys(self) -> list[bytes]:
        import redis

        with redis.Redis.from_url(REDIS_URL) as r:
            return list(r.scan_iter(match=f"{self.prefix}:*", count=1000))

    def cleanup(self) -> None:
        import redis

        for w in self.workers:
            w.kill()
        self._processes.close()
        with redis.Redis.from_url(REDIS_URL) as r:
            keys = list(r.scan_iter(match=f"{self.prefix}:*", count=1000))
            if keys:
                r.delete(*keys)


def make_service(tmp: Path) -> Service:
    return Service(name=unique("svc"), prefix=unique("prefix"), client_name=unique("conn"), tmp=tmp)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """A fresh service (no worker started yet)."""
    svc = make_service(tmp_path)
    yield svc
    svc.cleanup()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One worker serving the conformance handlers."""
    svc = make_service(tmp_path_factory.mktemp("served"))
    svc.start(concurrency=4)
    with svc.client() as client:
        svc.wait_ready(client)
    yield svc
    svc.cleanup()


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    """``wait_for(predicate, timeout, what)``: poll until true, else fail naming ``what``."""
    return zc_events.testing.wait_for


@pytest.fixture
def kill_connections() -> Callable[[str], int]:
    """``kill_connections(name_prefix)``: ``CLIENT KILL`` every connection whose name starts
    with ``name_prefix`` (only this test's own); return how many."""
    import redis

    def kill(name_prefix: str) -> int:
        with redis.Redis.from_url(REDIS_URL) as r:
            ids = [
                c["id"] for c in r.client_list() if str(c.get("name", "")).startswith(name_prefix)
            ]
            for client_id in ids:
                r.client_kill_filter(_id=client_id)
        return len(ids)

    return kill
