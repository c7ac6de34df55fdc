"""A server that dies or is not there: the caller gets an error within its timeout, never a hang."""

from __future__ import annotations

import threading
import time

import pytest

from zc_events import EventClient, PublishError

from .conftest import free_port


def test_a_closed_port_fails_at_once() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with EventClient("http", routes={"*": url}) as client:
        started = time.monotonic()
        with pytest.raises(PublishError, match="cannot connect"):
            client.get("conformance.add", data={"x": 1, "y": 1}, timeout=10)
        with pytest.raises(PublishError, match="cannot connect"):
            client.post_no_wait("conformance.add")
        assert time.monotonic() - started < 10


def test_a_server_killed_mid_call_fails_the_call_within_its_timeout(worker_factory) -> None:  # type: ignore[no-untyped-def]
    worker = worker_factory()
    outcome: list[BaseException | object] = []
    with EventClient("http", routes={"*": worker.url}) as client:
        assert client.get("conformance.add", data={"x": 1, "y": 1}).data == {"answer": 2}

        def call() -> None:
            try:
                outcome.append(client.get("conformance.sleep", data={"seconds": 30}, timeout=20))
            except BaseException as exc:
                outcome.append(exc)

        caller = threading.Thread(target=call)
        started = time.monotonic()
        caller.start()
        time.sleep(0.5)  # the request is in the handler
        worker.process.kill()
        caller.join(20)
        elapsed = time.monotonic() - started
    assert not caller.is_alive()
    assert isinstance(outcome[0], PublishError), outcome
    assert "may or may not have run" in str(outcome[0])
    assert elapsed < 20


def test_sigterm_finishes_in_flight_calls_and_exits_0(worker_factory) -> None:  # type: ignore[no-untyped-def]
    worker = worker_factory()
    outcome: list[object] = []
    with EventClient("http", routes={"*": worker.url}) as client:
        assert client.get("conformance.add", data={"x": 1, "y": 1}).data == {"answer": 2}

        def call() -> None:
            outcome.append(client.get("conformance.sleep", data={"seconds": 3}, timeout=20).data)

        caller = threading.Thread(target=call)
        caller.start()
        # The request is in the handler by then (one that has not arrived at SIGTERM is
        # refused): a wide margin, for a loaded machine.
        time.sleep(1.5)
        assert worker.process.terminate() == 0
        caller.join(20)
    assert outcome == [{"slept": 3}]
    assert "stopped serving" in worker.process.output
