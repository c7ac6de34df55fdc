"""Quorum service queues (``queue_type='quorum'``) on the local broker: declared as quorum
queues, served, dead-lettered by the broker over ``delivery_limit``, a queue of the other type is
a clear error, and prioritised messages are warned about once per key."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from zc_events import ConfigurationError
from zc_events_rabbitmq import RabbitMQBackend

pytestmark = [pytest.mark.rabbitmq]

MODULES = ("fault_handlers",)


def queue_type(queue: str) -> str:
    """The type of ``queue`` on the local broker, as ``rabbitmqctl list_queues`` says."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        pytest.skip("rabbitmqctl is not installed")
    listed = subprocess.run(
        [ctl, "-q", "--no-table-headers", "list_queues", "name", "type"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    types = dict(line.split("\t", 1) for line in listed.stdout.splitlines() if "\t" in line)
    return types.get(queue, "missing").strip()


def handled(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def test_bad_queue_type_and_delivery_limit_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="'queue_type' must be 'classic' or 'quorum'"):
        RabbitMQBackend(queue_type="replicated")
    with pytest.raises(ConfigurationError, match="'delivery_limit' must be an int >= 1"):
        RabbitMQBackend(queue_type="quorum", delivery_limit=0)


def test_quorum_queues_are_declared_and_served(service: Any, broker: Any) -> None:
    service.start(MODULES, queue_type="quorum")
    with service.client(queue_type="quorum") as client:
        service.wait_ready(client, "fault.ping")
        assert client.get("fault.ping", data=7).data["pong"] == 7
    assert queue_type(service.name) == "quorum"
    assert queue_type(f"{service.name}.dead") == "quorum"


def test_the_broker_dead_letters_a_message_over_the_delivery_limit(
    service: Any, broker: Any, tmp_path: Path, wait_for: Any
) -> None:
    """The worker's own limit is out of the way (ZC_EVENTS_MAX_DELIVERIES=100): the broker's
    x-delivery-limit stops a message that keeps killing its worker."""
    log = tmp_path / "handled.log"
    env = {"FAULT_LOG": str(log), "ZC_EVENTS_MAX_DELIVERIES": "100"}
    options = {"queue_type": "quorum", "delivery_limit": 2, "concurrency": 1}
    worker = service.start(MODULES, extra_env=env, **options)
    dead = f"{service.name}.dead"
    with service.client(queue_type="quorum") as client:
        service.wait_ready(client, "fault.ping")
        client.post_no_wait("fault.exit", data={"i": 1})
        for _restart in range(6):  # a supervisor restarting the worker each time it dies
            wait_for(lambda w=worker: w.poll() is not None or broker.count(dead), 60)
            if broker.count(dead):
                break
            assert worker.returncode == 3, worker.output
            worker = service.start(MODULES, extra_env=env, ready=None, **options)
        else:
            pytest.fail(f"still redelivered after 6 restarts; handled {handled(log)}")
        # delivered once, then twice more (delivery_limit=2), then dead-lettered by the broker
        assert handled(log) == [1, 1, 1]
        if worker.poll() is not None:  # it died on the last delivery
            worker = service.start(MODULES, extra_env=env, ready=None, **options)
        service.wait_ready(client, "fault.ping")
    [(props, body)] = broker.get_all(dead)
    assert b'"fault.exit"' in body
    assert props.headers["x-first-death-reason"] == "delivery_limit"


@pytest.mark.parametrize("existing", ["classic", "quorum"])
def test_a_queue_of_the_other_type_is_a_clear_configuration_error(
    existing: str, service: Any
) -> None:
    wanted = "quorum" if existing == "classic" else "classic"
    first = service.start(MODULES, queue_type=existing)
    first.terminate()
    worker = service.start(MODULES, queue_type=wanted, ready=None)
    assert worker.wait(60) == 2, worker.output
    line = worker.output.strip().splitlines()[-1]
    assert f"queue {service.name!r} exists as a {existing} queue" in line, worker.output
    assert f"queue_type is {wanted!r}" in line, line
    assert f"Set queue_type={existing!r}" in line and "delete it" in line, line
    assert "Traceback" not in worker.output


def test_a_prioritised_message_to_a_quorum_queue_is_warned_about_once_per_key(
    service: Any, caplog: pytest.LogCaptureFixture, tmp_path: Path, wait_for: Any
) -> None:
    log = tmp_path / "handled.log"
    worker = service.start(MODULES, queue_type="quorum", extra_env={"FAULT_LOG": str(log)})
    with service.client(queue_type="quorum") as client:
        service.wait_ready(client, "fault.ping")
        with caplog.at_level(logging.WARNING, logger="zc_events.rabbitmq"):
            for i in range(3):
                client.post_no_wait("fault.log", data={"i": i}, priority=5)
            client.post_no_wait("fault.log", data={"i": 9})
            assert client.get("fault.ping", data=1, priority=3).data["pong"] == 1
    warnings = [r.getMessage() for r in caplog.records if "ignore priorities" in r.getMessage()]
    assert len(warnings) == 2, warnings  # fault.log and fault.ping, once each
    assert "'fault.log'" in warnings[0] and "quorum" in warnings[0], warnings
    wait_for(lambda: len(handled(log)) == 4, 30, "the four fault.log messages handled")
    worker.terminate()
    lines = [line for line in worker.lines if "ignore priorities" in line]
    assert len([x for x in lines if "'fault.log'" in x]) == 1, worker.output
    assert len([x for x in lines if "'fault.ping'" in x]) == 1, worker.output
    assert all("WARNING" in x for x in lines), lines


def test_the_worker_counts_with_the_brokers_delivery_count_on_quorum_queues(
    service: Any, broker: Any, tmp_path: Path, wait_for: Any
) -> None:
    """ZC_EVENTS_MAX_DELIVERIES=2 below delivery_limit=5: the worker dead-letters from the
    broker's x-delivery-count (no copy of its own put back in the queue, nothing counted twice)."""
    from zc_events.serving import ATTEMPTS_HEADER, FAILURES_HEADER

    log = tmp_path / "handled.log"
    env = {"FAULT_LOG": str(log), "ZC_EVENTS_MAX_DELIVERIES": "2"}
    options = {"queue_type": "quorum", "delivery_limit": 5, "concurrency": 1}
    worker = service.start(MODULES, extra_env=env, **options)
    dead = f"{service.name}.dead"
    with service.client(queue_type="quorum") as client:
        service.wait_ready(client, "fault.ping")
        client.post_no_wait("fault.exit", data={"i": 1})
        for _restart in range(6):
            wait_for(lambda w=worker: w.poll() is not None or broker.count(dead), 60)
            if broker.count(dead):
                break
            worker = service.start(MODULES, extra_env=env, ready=None, **options)
        else:
            pytest.fail(f"still redelivered after 6 restarts; handled {handled(log)}")
        assert handled(log) == [1, 1]
    [(props, _body)] = broker.get_all(dead)
    assert props.headers[ATTEMPTS_HEADER] == 2
    assert FAILURES_HEADER not in props.headers
    assert "x-first-death-reason" not in props.headers  # the worker's dead letter, not the broker's
