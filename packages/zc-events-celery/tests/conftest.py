"""Fixtures: real Celery workers of ``zc_events_celery_testapp`` with per-session names."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest

from zc_events import AsyncEventClient, EventClient
from zc_events_celery.testing import CeleryWorker, celery_worker, delete_amqp_entities

HERE = Path(__file__).resolve().parent
BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
REDIS_URL = "redis://127.0.0.1:6379/0"


@dataclass
class Service:
    """One fake service: its own exchange, events queue and default queue."""

    name: str
    exchange: str

    @property
    def queue(self) -> str:
        return f"{self.name}-events"

    @property
    def dead_queue(self) -> str:
        return f"{self.name}.dead"

    @property
    def default_queue(self) -> str:
        return f"{self.name}-celery"

    @property
    def env(self) -> dict[str, str]:
        return {
            "SERVICE_NAME": self.name,
            "EVENTS_EXCHANGE": self.exchange,
            "EVENTS_REDIS_URL": REDIS_URL,
            "CELERY_BROKER_URL": BROKER_URL,
            "ZC_TEST_DEFAULT_QUEUE": self.default_queue,
            "ZC_TEST_RESULT_BACKEND": REDIS_URL,
        }

    def client(self, **options: object) -> EventClient:
        return EventClient(
            "celery", url=BROKER_URL, redis_url=REDIS_URL, events_exchange=self.exchange, **options
        )

    def async_client(self, **options: object) -> AsyncEventClient:
        """The async client: celery has no native asyncio backend, so the thread adapter."""
        return AsyncEventClient(
            "celery", url=BROKER_URL, redis_url=REDIS_URL, events_exchange=self.exchange, **options
        )

    def worker(self, **options: object) -> AbstractContextManager[CeleryWorker]:
        options.setdefault("queues", [self.queue, self.default_queue])
        env = {**self.env, **options.pop("env", {})}  # type: ignore[dict-item]
        return celery_worker(
            "zc_events_celery_testapp",
            env=env,
            pythonpath=[str(HERE)],
            **options,  # type: ignore[arg-type]
        )

    def delete(self) -> None:
        # Celery declares a direct exchange named after the default queue (task_default_exchange
        # defaults to task_default_queue): delete it too.
        delete_amqp_entities(
            BROKER_URL,
            queues=[self.queue, self.default_queue, self.dead_queue],
            exchanges=[self.exchange, self.default_queue],
        )


@pytest.fixture(scope="session")
def make_service() -> Iterator[Callable[[], Service]]:
    """A factory of services with unique names; their broker entities are deleted at the end."""
    made: list[Service] = []

    def make() -> Service:
        tag = uuid.uuid4().hex[:10]
        service = Service(f"zc-events-test-celery-{tag}", f"zc-events-test-celery-{tag}")
        made.append(service)
        return service

    yield make
    for service in made:
        service.delete()


@pytest.fixture(scope="session")
def service(make_service: Callable[[], Service]) -> Service:
    return make_service()


@pytest.fixture(scope="session")
def session_worker(service: Service) -> Iterator[CeleryWorker]:
    with service.worker(concurrency=8) as worker:
        yield worker
