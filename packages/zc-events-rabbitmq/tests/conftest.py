"""Fixtures: a broker admin helper and real ``zc-events worker`` subprocesses (``run_worker``).

Every exchange, queue and Redis key a test creates has a unique name and is deleted afterwards;
connections are named (``connection_name``) so fault tests close only their own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import zc_events.testing
from zc_events.testing import READY_MARKER, WorkerProcess, run_worker
from zc_events_rabbitmq.testing import delete_broker_objects

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
REDIS_URL = "redis://127.0.0.1:6379/0"
HERE = Path(__file__).resolve().parent


def unique(prefix: str) -> str:
    return f"zc-events-test-{prefix}-{uuid.uuid4().hex[:10]}"


class Broker:
    """Admin access to the local RabbitMQ for tests (one short connection per operation)."""

    def _channel(self) -> tuple[Any, Any]:
        import pika

        conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        return conn, conn.channel()

    def delete(self, queues: list[str] = (), exchanges: list[str] = ()) -> None:  # type: ignore[assignment]
        delete_broker_objects(queues, exchanges, url=AMQP_URL)

    def count(self, queue: str) -> int:
        conn, ch = self._channel()
        try:
            return int(ch.queue_declare(queue, passive=True).method.message_count)
        finally:
            conn.close()

    def get_all(self, queue: str) -> list[tuple[Any, bytes]]:
        """Take every message off ``queue``: (properties, body)."""
        conn, ch = self._channel()
        out = []
        try:
            while True:
                method, props, body = ch.basic_get(queue, auto_ack=True)
                if method is None:
                    return out
                out.append((props, body))
        finally:
            conn.close()

    def publish(self, exchange: str, routing_key: str, body: bytes, **properties: Any) -> None:
        import pika

        conn, ch = self._channel()
        try:
            ch.confirm_delivery()
            ch.basic_publish(exchange, routing_key, body, pika.BasicProperties(**properties))
        finally:
            conn.close()

    @staticmethod
    def close_connections(name_prefix: str) -> int:
        """Close (with rabbitmqctl) the connections whose connection_name starts with
        ``name_prefix``; return how many."""
        ctl = shutil.which("rabbitmqctl")
        if ctl is None:
            pytest.skip("rabbitmqctl is not installed")
        listed = subprocess.run(
            [ctl, "-q", "--no-table-headers", "list_connections", "pid", "client_properties"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        pids = [
            line.split("\t", 1)[0]
            for line in listed.stdout.splitlines()
            if f'{{"connection_name","{name_prefix}' in line
        ]
        for pid in pids:
            subprocess.run(
                [ctl, "-q", "close_connection", pid, "zc-events fault test"],
                capture_output=True,
                timeout=60,
                check=True,
            )
        return len(pids)


@pytest.fixture(scope="session")
def broker() -> Broker:
    return Broker()


@dataclass
class Service:
    """A service served by worker subprocesses, with unique broker names."""

    name: str
    exchange: str
    events_exchange: str
    connection_name: str
    tmp: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    _processes: ExitStack = field(default_factory=ExitStack)

    def env(self, backend: str = "rabbitmq", **options: Any) -> dict[str, str]:
        opts = {
            "exchange": self.exchange,
            "connection_name": f"{self.connection_name} worker",
            "events_exchange": self.events_exchange,
            "redis_url": REDIS_URL,
            **self.options,
            **options,
        }
        if backend == "rabbitmq_legacy":
            opts.pop("exchange")
            opts.pop("legacy", None)
        return {
            "ZC_EVENTS_BACKEND": backend,
            "ZC_EVENTS_BACKEND_OPTIONS": json.dumps(opts),
            "SERVICE_NAME": self.name,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        }

    def start(
        self,
        modules: tuple[str, ...] = ("zc_events.testing.handlers",),
        backend: str = "rabbitmq",
        extra_env: dict[str, str] | None = None,
        ready: str | None = READY_MARKER,
        **options: Any,
    ) -> WorkerProcess:
        """A ``zc-events worker`` process for this service, running until :meth:`cleanup`."""
        env = {**self.env(backend, **options), **(extra_env or {})}
        worker = self._processes.enter_context(run_worker(modules, env=env, ready=ready))
        self.workers.append(worker)
        return worker

    def client(self, backend: str = "rabbitmq", **options: Any) -> Any:
        from zc_events import EventClient, Settings

        return EventClient(
            backend,
            settings=Settings({"SERVICE_NAME": self.name}),
            **self.client_options(backend, **options),
        )

    def async_client(self, backend: str = "rabbitmq", **options: Any) -> Any:
        from zc_events import AsyncEventClient, Settings

        return AsyncEventClient(
            backend,
            settings=Settings({"SERVICE_NAME": self.name}),
            **self.client_options(backend, **options),
        )

    def client_options(self, backend: str, **options: Any) -> dict[str, Any]:
        if backend == "rabbitmq":
            opts = {"exchange": self.exchange}
        else:
            opts = {"events_exchange": self.events_exchange, "redis_url": REDIS_URL}
        opts["connection_name"] = f"{self.connection_name} client"
        return {**opts, **options}

    def wait_ready(
        self,
        client: Any,
        key: str = "conformance.echo",
        timeout: float = 30,
        worker: WorkerProcess | None = None,
    ) -> None:
        """Call ``key`` until a worker answers; fail at once if ``worker`` (default: the last one
        :meth:`start` started) exits."""
        worker = worker or (self.workers[-1] if self.workers else None)
        zc_events.testing.wait_until_served(client, key, timeout=timeout, worker=worker)

    def cleanup(self, broker: Broker) -> None:
        for w in self.workers:
            w.kill()
        self._processes.close()
        broker.delete(
            queues=[self.name, f"{self.name}.dead", f"{self.name}-events"],
            exchanges=[self.exchange, f"{self.exchange}.dead", self.events_exchange],
        )


def _service(tmp: Path) -> Service:
    return Service(
        name=unique("svc"),
        exchange=unique("ex"),
        events_exchange=unique("fanout"),
        connection_name=unique("conn"),
        tmp=tmp,
    )


@pytest.fixture
def service(broker: Broker, tmp_path: Path) -> Iterator[Service]:
    """A fresh service (no worker started yet)."""
    svc = _service(tmp_path)
    yield svc
    svc.cleanup(broker)


@pytest.fixture(scope="module")
def served(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One worker serving the conformance handlers natively and in the legacy protocol."""
    svc = _service(tmp_path_factory.mktemp("served"))
    svc.start(legacy=True, concurrency=4)
    with svc.client() as client:
        svc.wait_ready(client)
    yield svc
    svc.cleanup(broker)


@pytest.fixture(scope="module")
def served_async(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Like ``served``, for the async conformance tests: ``prefetch=1`` and 8 threads, so the
    slow sync handlers that cancelled calls leave running never hold other messages back (a
    sync handler blocks its consumer thread and whatever that thread has prefetched)."""
    svc = _service(tmp_path_factory.mktemp("served-async"))
    svc.start(legacy=True, concurrency=8, prefetch=1)
    with svc.client() as client:
        svc.wait_ready(client)
    yield svc
    svc.cleanup(broker)


@pytest.fixture
def redis_client() -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    """``wait_for(predicate, timeout, what)``: poll until true, else fail naming ``what``."""
    return zc_events.testing.wait_for


@pytest.fixture(scope="module")
def make_service(
    broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], Service]]:
    """``make_service()``: a fresh service kept for the whole test module, then cleaned up."""
    made: list[Service] = []

    def make() -> Service:
        made.append(_service(tmp_path_factory.mktemp("svc")))
        return made[-1]

    yield make
    for svc in made:
        svc.cleanup(broker)
