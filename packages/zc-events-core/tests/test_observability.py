"""Deadlines that follow the call, caused-by ids, health keys, middleware hooks, dead-letter API
(in-process, on the memory backend; the RabbitMQ package tests the same against real workers)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import zc_events
from zc_events import (
    CAUSED_BY_HEADER,
    ConfigurationError,
    DeadLetter,
    Dispatcher,
    Envelope,
    EventClient,
    HandlerRegistry,
    Middleware,
    NoRouteError,
    Request,
    RequestTimeout,
    Response,
    Settings,
)
from zc_events.backends.memory import MemoryBackend
from zc_events.cli import main


@pytest.fixture
def registry() -> HandlerRegistry:
    return HandlerRegistry()


@pytest.fixture
def client(registry: HandlerRegistry) -> Iterator[EventClient]:
    backend = MemoryBackend(dispatcher=Dispatcher([registry], service="obs-test"))
    with EventClient(backend, timeout=30) as c:
        yield c


def test_request_exposes_deadline_and_time_left(
    client: EventClient, registry: HandlerRegistry
) -> None:
    @registry.register("obs.deadline")
    def deadline(request: Request) -> dict[str, Any]:
        return {"deadline": request.deadline, "left": request.time_left()}

    before = time.time()
    data = client.get("obs.deadline", timeout=7).data
    assert before + 6 < data["deadline"] <= time.time() + 7
    assert 5 < data["left"] <= 7


def test_nested_call_inherits_the_remaining_deadline(
    client: EventClient, registry: HandlerRegistry
) -> None:
    @registry.register("obs.inner")
    def inner(request: Request) -> dict[str, Any]:
        return {"deadline": request.deadline, "caused_by": request.caused_by}

    @registry.register("obs.outer")
    def outer(request: Request) -> dict[str, Any]:
        # The client's default timeout is 30 s, explicit 60 s: both are capped to the caller's.
        default = client.get("obs.inner").data
        longer = client.get("obs.inner", timeout=60).data
        shorter = client.get("obs.inner", timeout=0.5).data
        return {
            "mine": request.deadline,
            "id": request.id,
            "default": default,
            "longer": longer,
            "shorter": shorter,
        }

    data = client.get("obs.outer", timeout=3).data
    assert data["default"]["deadline"] <= data["mine"]
    assert data["longer"]["deadline"] <= data["mine"]
    assert data["shorter"]["deadline"] < data["mine"] - 2  # an explicit shorter timeout wins
    assert data["default"]["caused_by"] == data["id"]
    # Outside a handler nothing is inherited.
    assert client.get("obs.inner", timeout=60).data["deadline"] > time.time() + 50


def test_nested_call_after_the_deadline_passed_is_not_sent(
    client: EventClient, registry: HandlerRegistry
) -> None:
    calls: list[str] = []

    @registry.register("obs.inner2")
    def inner(request: Request) -> None:
        calls.append(request.id)

    @registry.register("obs.late")
    def late(request: Request) -> str:
        time.sleep(0.3)
        try:
            client.get("obs.inner2")
        except RequestTimeout as exc:
            return str(exc)
        return "sent"

    envelope = Envelope.create("obs.late", "GET", timeout=0.2, reply_to="x")
    response = Dispatcher([registry]).dispatch(envelope)
    assert "not sent" in response.data and "obs.late" in response.data
    assert calls == []


def test_caused_by_header_only_inside_handlers(registry: HandlerRegistry) -> None:
    assert CAUSED_BY_HEADER not in Envelope.create("k").headers
    seen: list[Envelope] = []

    @registry.register("obs.make")
    def make(request: Request) -> None:
        headers = {"pk": 1}
        seen.append(Envelope.create("other", headers=headers))
        assert headers == {"pk": 1}  # the caller's dict is not changed

    parent = Envelope.create("obs.make", reply_to="x")
    Dispatcher([registry]).dispatch(parent)
    assert seen[0].headers == {"pk": 1, CAUSED_BY_HEADER: parent.id}
    assert zc_events.current_request() is None


def test_current_request_inside_a_handler(registry: HandlerRegistry) -> None:
    @registry.register("obs.current")
    def current(request: Request) -> str | None:
        found = zc_events.current_request()
        return None if found is None else found.id

    envelope = Envelope.create("obs.current", reply_to="x")
    assert Dispatcher([registry]).dispatch(envelope).data == envelope.id


def test_failed_no_wait_log_line_shows_both_ids(
    registry: HandlerRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    @registry.register("obs.boom")
    def boom(request: Request) -> None:
        raise ValueError("boom")

    envelope = Envelope.create("obs.boom", headers={CAUSED_BY_HEADER: "parent-id"})
    with caplog.at_level(logging.ERROR, logger="zc_events"):
        Dispatcher([registry]).respond(envelope)
    assert f"(id {envelope.id} caused by parent-id)" in caplog.text


# -- health ------------------------------------------------------------------------------------
def test_dispatcher_answers_its_health_key_without_a_handler(registry: HandlerRegistry) -> None:
    dispatcher = Dispatcher([registry], service="orders")
    assert dispatcher.health_key == "zc-events.health.orders"
    assert dispatcher.keys() == ["zc-events.health.orders"]
    assert dispatcher.handler_keys() == []
    assert dispatcher.handles("zc-events.health.orders")
    assert not dispatcher.handles("zc-events.health.other")
    data = dispatcher.dispatch(Envelope.create("zc-events.health.orders", reply_to="x")).data
    assert data["status"] == "ok" and data["service"] == "orders" and data["handlers"] == 0
    assert Dispatcher([registry]).keys() == []  # no service, no health key


def test_backend_dispatcher_has_the_service_health_key() -> None:
    backend = MemoryBackend(settings=Settings({"SERVICE_NAME": "billing"}))
    assert backend.default_dispatcher().health_key == "zc-events.health.billing"


def test_health_command_on_the_memory_backend_fails_with_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["health", "nobody-serves-this", "--timeout", "1", "--backend", "memory"])
    out = capsys.readouterr().out
    assert status == 1
    assert out.count("\n") == 1 and out.startswith("unhealthy:")


# -- health file -------------------------------------------------------------------------------
def test_health_file_is_touched_while_serving_and_removed_on_stop(tmp_path: Path) -> None:
    import threading

    from zc_events._worker import HealthFile

    backend = MemoryBackend()
    path = tmp_path / "alive"
    probe = HealthFile(path, backend, interval=0.05)
    probe.start()
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    first = path.stat().st_mtime_ns
    while path.stat().st_mtime_ns == first and time.monotonic() < deadline:
        time.sleep(0.01)
    assert path.stat().st_mtime_ns > first  # touched again and again
    backend.stop()  # not consuming any more: the file goes stale
    # Stale: untouched for 0.3 s (six probe intervals); a loaded machine may take a while.
    while True:
        stale = path.stat().st_mtime_ns
        time.sleep(0.3)
        if path.stat().st_mtime_ns == stale or time.monotonic() > deadline + 20:
            break
    assert path.stat().st_mtime_ns == stale, "still touched after the backend stopped"
    probe.stop()
    assert not path.exists()
    assert threading.active_count() >= 1


# -- middleware hooks --------------------------------------------------------------------------
class Recorder(Middleware):
    def __init__(self) -> None:
        self.backend: str | None = None
        self.finished: list[tuple[str, Any, Any]] = []

    def bind(self, backend: str) -> None:
        self.backend = backend

    def request_finished(
        self, envelope: Envelope, response: Response | None, error: BaseException | None
    ) -> None:
        self.finished.append((envelope.key, response, error))


def test_request_finished_sees_every_way_a_call_ends(registry: HandlerRegistry) -> None:
    registry.register("obs.ok", lambda request: "fine")
    registry.register("obs.slow", lambda request: time.sleep(1))
    recorder = Recorder()
    backend = MemoryBackend(dispatcher=Dispatcher([registry]))
    with EventClient(backend, middleware=[recorder]) as c:
        assert recorder.backend == "memory"
        c.get("obs.ok")
        with pytest.raises(RequestTimeout):
            c.get("obs.slow", timeout=0.1)
        with pytest.raises(NoRouteError):
            c.get("obs.nobody")
        c.post_no_wait("obs.ok")
        with c.batch() as batch:
            batch.post_no_wait("obs.ok")
        with pytest.raises(KeyError), c.batch() as batch:
            batch.post_no_wait("obs.ok")
            raise KeyError("abandoned")
    keys = [(k, None if r is None else r.data, type(e).__name__) for k, r, e in recorder.finished]
    assert keys == [
        ("obs.ok", "fine", "NoneType"),
        ("obs.slow", None, "RequestTimeout"),
        ("obs.nobody", None, "NoRouteError"),
        ("obs.ok", None, "NoneType"),
        ("obs.ok", None, "NoneType"),
    ]  # the abandoned batch published nothing: its middleware never ran


def test_backend_dispatcher_binds_server_middleware() -> None:
    recorder = Recorder()
    backend = MemoryBackend(settings=Settings({"ZC_EVENTS_MIDDLEWARE": [recorder]}))
    backend.default_dispatcher()
    assert recorder.backend == "memory"


# -- dead letters ------------------------------------------------------------------------------
def test_backends_without_dead_letters_say_so() -> None:
    backend = MemoryBackend()
    with pytest.raises(ConfigurationError, match="keeps no dead letters"):
        backend.dead_letters("svc")
    with pytest.raises(ConfigurationError, match="keeps no dead letters"):
        backend.replay_dead_letters("svc")
    assert DeadLetter("i", "k", "GET", "why", None, 3, "q").size == 3


def test_dead_commands_need_a_choice_and_name_the_backend(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["dead", "replay", "svc", "--backend", "memory"]) == 1
    assert "--id ID (repeatable) or --all" in capsys.readouterr().err
    assert main(["dead", "list", "svc", "--backend", "memory"]) == 2
    assert "'memory' backend keeps no dead letters" in capsys.readouterr().err


async def test_async_handler_nested_call_inherits_the_deadline() -> None:
    from zc_events import AsyncEventClient
    from zc_events.backends.memory import AsyncMemoryBackend

    registry = HandlerRegistry()
    box: list[AsyncEventClient] = []

    async def inner(request: Request) -> dict[str, Any]:
        return {"deadline": request.deadline, "caused_by": request.caused_by}

    async def outer(request: Request) -> dict[str, Any]:
        nested = (await box[0].get("obs.ainner", timeout=60)).data
        return {"id": request.id, "deadline": request.deadline, "inner": nested}

    registry.register("obs.ainner", inner)
    registry.register("obs.aouter", outer)
    backend = AsyncMemoryBackend(dispatcher=Dispatcher([registry]))
    async with AsyncEventClient(backend, timeout=30) as client:
        box.append(client)
        data = (await client.get("obs.aouter", timeout=3)).data
    assert data["inner"]["deadline"] <= data["deadline"]
    assert data["inner"]["caused_by"] == data["id"]


def test_sync_dispatch_of_an_async_handler_sets_the_served_request(
    registry: HandlerRegistry,
) -> None:
    async def current(request: Request) -> str | None:
        found = zc_events.current_request()
        return None if found is None else found.id

    registry.register("obs.acurrent", current)
    envelope = Envelope.create("obs.acurrent", reply_to="x")
    assert Dispatcher([registry]).dispatch(envelope).data == envelope.id
