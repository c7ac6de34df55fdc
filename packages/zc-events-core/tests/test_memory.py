"""What makes the memory backend behave like a transport rather than a function call."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from zc_events import (
    ConfigurationError,
    Dispatcher,
    EventClient,
    HandlerRegistry,
    NoRouteError,
    PublishError,
    Request,
    RequestTimeout,
)
from zc_events.backends.memory import MemoryBackend

gate = threading.Event()
seen: list[object] = []


def blocked(request: Request) -> None:
    gate.wait(10)
    seen.append(request.data)


def mutate(request: Request) -> object:
    request.data["changed"] = True
    return request.data


@pytest.fixture
def backend() -> Iterator[MemoryBackend]:
    registry = HandlerRegistry(
        {"blocked": blocked, "mutate": mutate, "sleep": lambda r: time.sleep(r.data)}
    )
    backend = MemoryBackend(dispatcher=Dispatcher([registry]), workers=2)
    gate.clear()
    seen.clear()
    yield backend
    gate.set()
    backend.close()


def test_no_wait_returns_before_the_handler_runs(backend: MemoryBackend) -> None:
    client = EventClient(backend)
    client.post_no_wait("blocked", data=1)
    assert seen == [] and backend.pending == 1
    gate.set()
    assert backend.join(timeout=5) is True
    assert seen == [1] and backend.pending == 0


def test_join_times_out_while_work_is_pending(backend: MemoryBackend) -> None:
    EventClient(backend).post_no_wait("blocked", data=1)
    assert backend.join(timeout=0.05) is False
    gate.set()
    assert backend.join(timeout=5) is True


def test_the_handler_sees_a_copy_not_the_callers_object(backend: MemoryBackend) -> None:
    data = {"n": 1}
    response = EventClient(backend).post("mutate", data=data)
    assert response.data == {"n": 1, "changed": True}
    assert data == {"n": 1}


def test_threaded_timeout_fires_while_the_handler_still_runs() -> None:
    registry = HandlerRegistry({"blocked": blocked})
    backend = MemoryBackend(dispatcher=Dispatcher([registry]), inline=False)
    gate.clear()
    seen.clear()
    try:
        with pytest.raises(RequestTimeout, match="no reply to GET 'blocked' within 0.05 s"):
            EventClient(backend).get("blocked", data=1, timeout=0.05)
        assert seen == []  # the caller stopped waiting; the handler is still blocked
    finally:
        gate.set()
        backend.close()


def test_waiting_calls_run_inline_by_default(backend: MemoryBackend) -> None:
    threads: list[threading.Thread] = []
    registry = HandlerRegistry({"where": lambda r: threads.append(threading.current_thread())})
    backend = MemoryBackend(dispatcher=Dispatcher([registry]))
    assert backend.inline is True
    EventClient(backend).get("where")
    assert threads == [threading.current_thread()]


def test_inline_overrun_raises_request_timeout_when_the_handler_returns(
    backend: MemoryBackend,
) -> None:
    with pytest.raises(RequestTimeout, match="ran past the timeout.*inline=False"):
        EventClient(backend).get("sleep", data=0.2, timeout=0.05)


def test_unknown_key_fails_at_once(backend: MemoryBackend) -> None:
    client = EventClient(backend)
    with pytest.raises(NoRouteError, match="'nobody'"):
        client.get("nobody")
    with pytest.raises(NoRouteError):
        client.post_no_wait("nobody")


def test_closed_backend_refuses_work(backend: MemoryBackend) -> None:
    backend.close()
    with pytest.raises(PublishError, match="closed"):
        EventClient(backend).get("mutate", data={})


def test_pending_no_wait_work_finishes_on_close() -> None:
    done: list[int] = []
    registry = HandlerRegistry({"slow": lambda r: (time.sleep(0.01), done.append(r.data))})
    backend = MemoryBackend(dispatcher=Dispatcher([registry]), workers=1)
    client = EventClient(backend)
    for i in range(20):
        client.post_no_wait("slow", data=i)
    backend.close()
    assert sorted(done) == list(range(20))


def test_bad_options_are_named() -> None:
    with pytest.raises(ConfigurationError, match="'workers' must be an int >= 1"):
        MemoryBackend(workers=0)
    with pytest.raises(ConfigurationError, match="unknown option.*url"):
        MemoryBackend(url="amqp://")  # type: ignore[call-arg]


def test_serve_blocks_until_stopped_then_drains(backend: MemoryBackend) -> None:
    thread = threading.Thread(target=backend.serve)
    thread.start()
    EventClient(backend).post_no_wait("blocked", data=2)
    backend.stop()
    gate.set()
    thread.join(5)
    assert not thread.is_alive() and seen == [2]
