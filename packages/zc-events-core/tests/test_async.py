"""asyncio: AsyncEventClient, create_async_backend, async handlers and async middleware hooks."""

from __future__ import annotations

import asyncio
import threading
import warnings
from typing import Any, ClassVar

import pytest

import zc_events
from zc_events import (
    AsyncBackend,
    AsyncEventClient,
    Backend,
    ConfigurationError,
    Dispatcher,
    Envelope,
    EventClient,
    HandlerRegistry,
    Middleware,
    NoRouteError,
    Request,
    Response,
    Settings,
    ThreadedAsyncBackend,
    create_async_backend,
)
from zc_events.backends.memory import AsyncMemoryBackend, MemoryBackend


async def async_add(request: Request) -> dict[str, int]:
    await asyncio.sleep(0)
    return {"answer": request.data["x"] + request.data["y"]}


def where(request: Request) -> dict[str, Any]:
    return {"thread": threading.current_thread().name}


async def async_where(request: Request) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    return {"thread": threading.current_thread().name, "loop": id(loop)}


class AsyncCallable:
    async def __call__(self, request: Request) -> str:
        return "called"


REGISTRY = HandlerRegistry(
    {
        "async_add": async_add,
        "where": where,
        "async_where": async_where,
        "async_callable": AsyncCallable(),
    }
)


def envelope(key: str, data: Any = None) -> Envelope:
    env = Envelope.create(key, "GET", data, None, timeout=30)
    env.reply_to = "test"
    return env


# -- the Dispatcher serves async def handlers -----------------------------------------------
def test_sync_dispatch_awaits_an_async_handler_never_a_coroutine_on_the_wire() -> None:
    dispatcher = Dispatcher([REGISTRY])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" fails the test
        raw = dispatcher.handle(envelope("async_add", {"x": 1, "y": 2}).encode())
    assert raw is not None
    assert Response.decode(raw) == Response({"answer": 3})


def test_async_handlers_share_one_background_loop() -> None:
    dispatcher = Dispatcher([REGISTRY])
    first = dispatcher.dispatch(envelope("async_where")).data
    second = Dispatcher([REGISTRY]).dispatch(envelope("async_where")).data
    assert first == second
    assert first["thread"] == "zc-events-asyncio"


def test_an_async_callable_object_is_awaited() -> None:
    assert Dispatcher([REGISTRY]).dispatch(envelope("async_callable")).data == "called"
    assert Dispatcher([REGISTRY]).is_async("async_callable") is True
    assert Dispatcher([REGISTRY]).is_async("where") is False


def test_an_async_handler_error_becomes_an_error_response() -> None:
    response = Dispatcher([REGISTRY]).dispatch(envelope("async_add", {"x": 1}))
    assert (response.errors[0]["type"], response.errors[0]["message"]) == ("KeyError", "'y'")


async def test_adispatch_awaits_async_handlers_on_the_running_loop() -> None:
    response = await Dispatcher([REGISTRY]).adispatch(envelope("async_where"))
    assert response.data["loop"] == id(asyncio.get_running_loop())


async def test_adispatch_runs_sync_handlers_on_a_thread() -> None:
    response = await Dispatcher([REGISTRY]).adispatch(envelope("where"))
    assert response.data["thread"] != threading.current_thread().name


async def test_ahandle_encodes_the_reply_and_skips_no_wait() -> None:
    dispatcher = Dispatcher([REGISTRY])
    raw = await dispatcher.ahandle(envelope("async_add", {"x": 2, "y": 2}).encode())
    assert raw is not None and Response.decode(raw).data == {"answer": 4}
    no_wait = envelope("async_add", {"x": 2, "y": 2})
    no_wait.reply_to = None
    assert await dispatcher.ahandle(no_wait.encode()) is None


def test_sync_client_on_memory_serves_async_handlers() -> None:
    with EventClient(MemoryBackend(dispatcher=Dispatcher([REGISTRY]))) as client:
        assert client.get("async_add", data={"x": 20, "y": 22}).data == {"answer": 42}


def test_a_sync_call_from_an_async_handler_to_another_async_handler_fails_clearly() -> None:
    # Inline memory dispatch would wait for the background loop from the background loop.
    client = EventClient(MemoryBackend(dispatcher=Dispatcher([REGISTRY])))

    async def nested(request: Request) -> Any:
        return client.get("async_add", data={"x": 1, "y": 1}).errors

    registry = HandlerRegistry({"nested": nested})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        errors = Dispatcher([registry]).dispatch(envelope("nested")).data
    assert errors[0]["type"] == "RuntimeError"
    assert "AsyncEventClient" in errors[0]["message"]


# -- create_async_backend --------------------------------------------------------------------
class SyncOnly(Backend):
    name = "sync-only"

    def __init__(self, *, settings: Settings | None = None, flag: int = 0, **options: Any):
        super().__init__(settings=settings, **options)
        self.flag = flag

    def request(self, envelope: Envelope, timeout: float) -> Response:
        return Response({"thread": threading.current_thread().name, "flag": self.flag})

    def send(self, envelope: Envelope) -> None:
        pass


class NotAsync(SyncOnly):
    @classmethod
    def async_backend_class(cls) -> Any:
        return object


def test_create_async_backend_uses_the_native_class() -> None:
    backend = create_async_backend("memory", workers=3)
    assert isinstance(backend, AsyncMemoryBackend) and backend.workers == 3
    assert MemoryBackend.async_backend_class() is AsyncMemoryBackend


def test_create_async_backend_layers_settings_options() -> None:
    settings = Settings({"ZC_EVENTS_BACKEND_OPTIONS": {"workers": 2}})
    backend = create_async_backend(settings=settings)
    assert isinstance(backend, AsyncMemoryBackend) and backend.workers == 2
    with pytest.raises(ConfigurationError, match="unknown option.*url"):
        create_async_backend("memory", url="amqp://")


async def test_a_backend_without_a_native_class_runs_on_threads() -> None:
    path = f"{__name__}:SyncOnly"
    backend = create_async_backend(path, flag=7)
    assert isinstance(backend, ThreadedAsyncBackend)
    assert backend.name == "sync-only" and isinstance(backend.backend, SyncOnly)
    async with AsyncEventClient(backend) as client:
        data = (await client.get("anything")).data
    assert data["flag"] == 7 and data["thread"].startswith("zc-events-sync-only-async")


def test_a_bad_async_backend_class_is_named() -> None:
    with pytest.raises(ConfigurationError, match="not a zc_events.AsyncBackend"):
        create_async_backend(f"{__name__}:NotAsync")


def test_async_backend_checks_options() -> None:
    class Mine(AsyncBackend):
        name = "mine"

        async def request(self, envelope: Envelope, timeout: float) -> Response:
            return Response()

        async def send(self, envelope: Envelope) -> None:
            pass

    with pytest.raises(ConfigurationError, match="backend 'mine' got unknown option.*colour"):
        Mine(colour="red")


async def test_default_send_many_names_the_failures() -> None:
    class Flaky(AsyncBackend):
        name = "flaky"

        async def request(self, envelope: Envelope, timeout: float) -> Response:
            return Response()

        async def send(self, envelope: Envelope) -> None:
            if envelope.data % 2:
                raise OSError("odd")

    envelopes = [Envelope.create("k", "POST", i, None) for i in range(4)]
    with pytest.raises(zc_events.PublishError, match="2 of 4 messages were not published") as info:
        await Flaky().send_many(envelopes)
    assert [e.data for e in info.value.failed] == [1, 3]  # type: ignore[attr-defined]


async def test_async_client_accepts_a_sync_backend_instance() -> None:
    async with AsyncEventClient(MemoryBackend(dispatcher=Dispatcher([REGISTRY]))) as client:
        assert isinstance(client.backend, ThreadedAsyncBackend)
        assert (await client.get("async_add", data={"x": 1, "y": 1})).data == {"answer": 2}


async def test_async_client_from_settings() -> None:
    zc_events.handlers.register("async_add_global", async_add)
    try:
        async with AsyncEventClient() as client:
            assert isinstance(client.backend, AsyncMemoryBackend)
            response = await client.get("async_add_global", data={"x": 1, "y": 1})
            assert response.data == {"answer": 2}
            with pytest.raises(NoRouteError, match="in-process"):
                await client.get("nobody-handles-this")
    finally:
        zc_events.handlers.unregister("async_add_global")


async def test_async_memory_no_wait_returns_before_the_handler_runs() -> None:
    done: list[int] = []
    started = asyncio.Event()

    async def record(request: Request) -> None:
        started.set()
        done.append(request.data)

    backend = AsyncMemoryBackend(dispatcher=Dispatcher([HandlerRegistry({"record": record})]))
    async with AsyncEventClient(backend) as client:
        await client.post_no_wait("record", data=1)
        assert done == [] and backend.pending == 1
        assert await backend.join(timeout=5) is True
        assert done == [1] and backend.pending == 0
        await client.post_no_wait("record", data=2)
    assert done == [1, 2]  # aclose drained it


# -- middleware hooks, sync and async ----------------------------------------------------------
class Tagging(Middleware):
    """Sync hooks only."""

    calls: ClassVar[list[str]] = []

    def outgoing_request(self, envelope: Envelope) -> Envelope:
        envelope.headers = {**envelope.headers, "sync": "yes"}
        return envelope

    def incoming_response(self, envelope: Envelope, response: Response) -> Response:
        response.data = {**response.data, "seen_by_sync": True}
        return response


class AsyncTagging(Middleware):
    """Async hooks only, the a-prefixed spelling and an async def hook."""

    async def aoutgoing_request(self, envelope: Envelope) -> Envelope:
        await asyncio.sleep(0)
        envelope.headers = {**envelope.headers, "async": "yes"}
        return envelope

    async def incoming_response(  # type: ignore[override]
        self, envelope: Envelope, response: Response
    ) -> Response:
        await asyncio.sleep(0)
        response.data = {**response.data, "seen_by_async": True}
        return response


def echo_headers(request: Request) -> dict[str, Any]:
    return {"headers": request.headers}


ECHO = HandlerRegistry({"echo": echo_headers})


async def test_async_client_runs_sync_and_async_hooks() -> None:
    backend = AsyncMemoryBackend(dispatcher=Dispatcher([ECHO]))
    async with AsyncEventClient(backend, middleware=[Tagging(), AsyncTagging()]) as client:
        data = (await client.get("echo")).data
    assert data["headers"] == {"sync": "yes", "async": "yes"}
    assert data["seen_by_sync"] is True and data["seen_by_async"] is True


def test_sync_client_runs_async_only_hooks_on_the_background_loop() -> None:
    backend = MemoryBackend(dispatcher=Dispatcher([ECHO]))
    with EventClient(backend, middleware=[Tagging(), AsyncTagging()]) as client:
        data = client.get("echo").data
    assert data["headers"] == {"sync": "yes", "async": "yes"}
    assert data["seen_by_sync"] is True and data["seen_by_async"] is True


class ServerAsync(Middleware):
    async def aincoming_request(self, envelope: Envelope) -> Envelope:
        envelope.headers = {**envelope.headers, "server": "async"}
        return envelope

    def outgoing_response(self, envelope: Envelope, response: Response) -> Response:
        response.status = 299
        return response


def test_sync_dispatch_runs_async_server_hooks() -> None:
    response = Dispatcher([ECHO], [ServerAsync()]).dispatch(envelope("echo"))
    assert (response.data["headers"]["server"], response.status) == ("async", 299)


async def test_adispatch_runs_async_server_hooks() -> None:
    response = await Dispatcher([ECHO], [ServerAsync()]).adispatch(envelope("echo"))
    assert (response.data["headers"]["server"], response.status) == ("async", 299)


async def test_batch_runs_async_hooks_at_flush() -> None:
    seen: list[dict[str, Any]] = []

    def keep(request: Request) -> None:
        seen.append(request.headers)

    backend = AsyncMemoryBackend(dispatcher=Dispatcher([HandlerRegistry({"keep": keep})]))
    async with AsyncEventClient(backend, middleware=[AsyncTagging()]) as client:
        async with client.batch() as batch:
            batch.post_no_wait("keep")
            batch.post_no_wait("keep")
        await backend.join(5)
    assert seen == [{"async": "yes"}, {"async": "yes"}]


async def test_async_client_on_the_events_mock(zc_events_mock: Any) -> None:
    zc_events_mock.add("GET", "add", data={"answer": 2})
    async with AsyncEventClient(zc_events_mock) as client:
        assert (await client.get("add", data={"x": 1, "y": 1})).data == {"answer": 2}
    assert zc_events_mock.calls[0].data == {"x": 1, "y": 1}


async def current_id(request: Request) -> Any:
    current = zc_events.current_request()
    return None if current is None else current.id


def test_an_async_handler_on_a_sync_worker_sees_its_current_request() -> None:
    registry = HandlerRegistry({"current_id": current_id})
    env = envelope("current_id")
    assert Dispatcher([registry]).dispatch(env).data == env.id


async def test_an_async_handler_on_an_async_worker_sees_its_current_request() -> None:
    registry = HandlerRegistry({"current_id": current_id, "where": where})
    env = envelope("current_id")
    assert (await Dispatcher([registry]).adispatch(env)).data == env.id


async def test_a_nested_async_call_inherits_the_deadline_and_names_its_cause() -> None:
    registry = HandlerRegistry()
    client = AsyncEventClient(AsyncMemoryBackend(dispatcher=Dispatcher([registry])))

    async def inner(request: Request) -> dict[str, Any]:
        cause = request.headers.get(zc_events.CAUSED_BY_HEADER)
        return {"deadline": request.envelope.deadline, "cause": cause}

    async def outer(request: Request) -> dict[str, Any]:
        nested = (await client.get("inner", timeout=600)).data
        return {**nested, "outer_deadline": request.envelope.deadline, "id": request.id}

    registry.update({"inner": inner, "outer": outer})
    async with client:
        data = (await client.get("outer", timeout=5)).data
    assert data["deadline"] <= data["outer_deadline"]
    assert data["cause"] == data["id"]


async def test_aclose_cancels_handlers_nobody_waits_for() -> None:
    started = asyncio.Event()

    async def forever(request: Request) -> None:
        started.set()
        await asyncio.sleep(3600)

    backend = AsyncMemoryBackend(dispatcher=Dispatcher([HandlerRegistry({"forever": forever})]))
    client = AsyncEventClient(backend)
    call = asyncio.create_task(client.get("forever", timeout=3600))
    await started.wait()
    call.cancel()  # the caller gives up; the handler task runs on, as on a real server
    with pytest.raises(asyncio.CancelledError):
        await call
    (orphan,) = backend._tasks
    assert not orphan.done()
    await asyncio.wait_for(client.aclose(), 10)
    assert orphan.cancelled()
    with pytest.raises(zc_events.PublishError, match="closed"):
        await client.get("forever")
