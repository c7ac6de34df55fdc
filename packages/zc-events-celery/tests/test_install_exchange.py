"""``install(app, events_exchange=...)`` is honoured everywhere, with no EVENTS_EXCHANGE set."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

import zc_events_celery
from zc_events import EventClient, Settings
from zc_events_celery import CeleryBackend
from zc_events_celery.testing import celery_worker, delete_amqp_entities

HERE = Path(__file__).resolve().parent
BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(autouse=True)
def no_exchange_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("EVENTS_EXCHANGE", "SERVICE_NAME", "ZC_EVENTS_SETTINGS"):
        monkeypatch.delenv(name, raising=False)


def test_a_backend_given_an_installed_app_takes_its_names() -> None:
    app = Celery("installed", broker="memory://", set_as_current=False)
    zc_events_celery.install(
        app, service_name="orders", events_exchange="orders-fleet", settings=Settings({})
    )
    backend = CeleryBackend(app=app, settings=Settings({}))
    assert (backend.exchange_name, backend.queue_name) == ("orders-fleet", "orders-events")
    inst = zc_events_celery.installation(app)
    assert inst is not None
    assert inst.get_dispatcher() is not None  # no backend (and no EVENTS_EXCHANGE) needed


@pytest.fixture
def names() -> Iterator[tuple[str, str]]:
    tag = uuid.uuid4().hex[:10]
    service, exchange = f"zc-events-test-celx-{tag}", f"zc-events-test-celx-{tag}-fanout"
    yield service, exchange
    delete_amqp_entities(
        BROKER_URL,
        queues=[f"{service}-events", f"{service}-celery", f"{service}.dead"],
        # Celery declares a direct exchange named after the default queue.
        exchanges=[exchange, f"{service}-celery"],
    )


@pytest.mark.celery
def test_worker_and_client_use_the_exchange_given_to_install(names: tuple[str, str]) -> None:
    """The celery README's set-up: names passed to install() on both sides, nothing else."""
    service, exchange = names
    env = {
        "ZC_TEST_SERVICE": service,
        "ZC_TEST_EXCHANGE": exchange,
        "ZC_TEST_DEFAULT_QUEUE": f"{service}-celery",
        "ZC_TEST_REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": BROKER_URL,
    }
    app = Celery("client", broker=BROKER_URL, set_as_current=False)
    zc_events_celery.install(
        app, service_name=service, events_exchange=exchange, redis_url=REDIS_URL
    )
    # configure(backend="celery", backend_options={"app": app}), as the README says
    client_settings = Settings(
        {"ZC_EVENTS_BACKEND": "celery", "ZC_EVENTS_BACKEND_OPTIONS": {"app": app}}
    )
    with (
        celery_worker(
            "zc_events_celery_exchange_app",
            env=env,
            pythonpath=[str(HERE)],
            queues=[f"{service}-events", f"{service}-celery"],
        ) as worker,
        EventClient(settings=client_settings, timeout=15) as client,
    ):
        response = client.get("conformance.add", data={"x": 2, "y": 3})
        assert response.data == {"answer": 5}, worker.output
