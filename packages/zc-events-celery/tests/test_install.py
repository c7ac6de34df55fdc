"""install(app) and the backend's options, without a broker."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery
from kombu import Exchange, Queue

import zc_events
import zc_events_celery
from zc_events import ConfigurationError, EventClient, RequestTimeout, Settings, legacy
from zc_events_celery import CeleryBackend

APP_PATH = f"{__name__}:module_app"
module_app: Any = None


@pytest.fixture(autouse=True)
def events_exchange(monkeypatch: pytest.MonkeyPatch) -> None:
    """EVENTS_EXCHANGE has no default; these tests run as a service that sets it."""
    monkeypatch.setenv("EVENTS_EXCHANGE", "test-install-events")


def make_app(**conf: Any) -> Celery:
    app = Celery("zc-events-test", broker="memory://", set_as_current=False)
    app.conf.update(conf)
    return app


def test_install_sets_up_queue_route_task_and_defaults() -> None:
    app = make_app()
    task = zc_events_celery.install(app, service_name="orders", events_exchange="events-x")
    assert task.name == legacy.EVENT_TASK
    assert legacy.EVENT_TASK in app.tasks
    queues = {q.name: q for q in app.conf.task_queues}
    assert set(queues) == {"celery", "orders-events"}
    events = queues["orders-events"]
    assert (events.exchange.name, events.exchange.type, events.routing_key) == (
        "events-x",
        "fanout",
        "",
    )
    assert events.durable and events.queue_arguments == {"x-max-priority": 10}
    assert app.amqp.router.route({}, legacy.EVENT_TASK)["queue"].name == "orders-events"
    conf = app.conf
    assert (conf.task_serializer, conf.accept_content) == ("json", ["json"])
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert task.acks_late and task.reject_on_worker_lost and task.ignore_result


def test_the_apps_own_settings_win_before_and_after_install() -> None:
    app = make_app(task_acks_late=False)
    zc_events_celery.install(app, service_name="orders", events_exchange="events-x")
    app.conf.worker_prefetch_multiplier = 4
    assert app.conf.task_acks_late is False
    assert app.conf.worker_prefetch_multiplier == 4
    assert app.conf.task_reject_on_worker_lost is True


def test_install_keeps_configured_queues_and_routes() -> None:
    mine = Queue("mine", Exchange("mine"), routing_key="mine")
    app = make_app(task_queues=[mine], task_routes={"proj.*": {"queue": "mine"}})
    zc_events_celery.install(app, queue="svc-events", events_exchange="events-x")
    assert [q.name for q in app.conf.task_queues] == ["mine", "svc-events"]
    assert app.amqp.router.route({}, "proj.add")["queue"].name == "mine"
    assert app.amqp.router.route({}, legacy.EVENT_TASK)["queue"].name == "svc-events"


def test_install_before_the_app_is_configured() -> None:
    app = Celery("lazy", set_as_current=False)
    zc_events_celery.install(app, service_name="lazy")
    app.config_from_object({"broker_url": "memory://", "task_default_queue": "lazy-tasks"})
    assert [q.name for q in app.conf.task_queues] == ["lazy-tasks", "lazy-events"]


def test_install_takes_names_from_settings() -> None:
    settings = Settings({"SERVICE_NAME": "billing", "EVENTS_EXCHANGE": "fleet"})
    app = make_app()
    zc_events_celery.install(app, settings=settings)
    inst = zc_events_celery.installation(app)
    assert inst is not None
    assert (inst.queue.name, inst.exchange) == ("billing-events", "fleet")


def test_install_without_a_service_name_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="SERVICE_NAME"):
        zc_events_celery.install(make_app(), settings=Settings({}))


def test_task_dispatches_to_handlers_and_ignores_other_keys() -> None:
    seen: list[Any] = []
    registry = zc_events.HandlerRegistry({"t.seen": lambda request: seen.append(request.data)})
    app = make_app()
    zc_events_celery.install(app, service_name="t", dispatcher=zc_events.Dispatcher([registry]))
    task = app.tasks[legacy.EVENT_TASK]
    envelope = zc_events.Envelope.create("t.seen", data={"n": 1})
    task.run("t.seen", legacy.build_payload(envelope, None))
    task.run("t.other", legacy.build_payload(zc_events.Envelope.create("t.other"), None))
    task.run("t.seen", task_id="x", n=2)  # a protocol-1 event
    assert seen == [{"n": 1}, {"n": 2}]


def test_backend_is_registered_and_validates_options() -> None:
    backend = zc_events.create_backend("celery", url="memory://")
    assert isinstance(backend, CeleryBackend)
    assert backend.unknown_key_error is RequestTimeout
    with pytest.raises(ConfigurationError, match="unknown option"):
        CeleryBackend(url="memory://", colour="blue")
    with pytest.raises(ConfigurationError, match="cannot be imported"):
        CeleryBackend(app="nowhere.celery:app")
    with pytest.raises(ConfigurationError, match="'app' or 'url'"):
        CeleryBackend(app=make_app(), url="memory://")


def test_backend_loads_the_app_by_path() -> None:
    global module_app
    module_app = make_app()
    backend = CeleryBackend(app=APP_PATH)
    assert backend.app is module_app


def test_non_json_data_is_refused_before_publishing() -> None:
    with (
        EventClient("celery", url="memory://") as client,
        pytest.raises(zc_events.EnvelopeError, match="JSON"),
    ):
        client.post_no_wait("x", data={"when": object()})


def test_install_without_an_events_exchange_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVENTS_EXCHANGE")
    app = Celery("no-exchange", set_as_current=False)
    with pytest.raises(ConfigurationError, match="EVENTS_EXCHANGE"):
        zc_events_celery.install(app, service_name="orders", settings=Settings({}))
