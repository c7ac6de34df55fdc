"""Observability against real worker processes: deadlines that follow the call, caused-by ids
in the worker's log, `zc-events health`, `--health-file`, `zc-events dead list|replay`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from zc_events import Envelope
from zc_events.testing import run_worker

pytestmark = pytest.mark.rabbitmq

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
Service = Broker = Any  # the conftest fixtures' types

MODULES = ("obs_handlers",)


def cli(
    service: Service,
    *args: str,
    backend: str = "rabbitmq",
    timeout: float = 120,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **service.env(backend), **(extra_env or {})}
    return subprocess.run(
        [sys.executable, "-m", "zc_events", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


# -- deadlines and caused-by ids -----------------------------------------------------------------
def test_nested_call_in_a_worker_inherits_the_deadline_and_names_its_cause(
    service: Service,
) -> None:
    service.start(MODULES, concurrency=4)
    with service.client() as client:
        service.wait_ready(client, "obs.inner")
        response = client.get("obs.outer", timeout=20)
    data = response.data
    assert data["inner"]["caused_by"] == data["id"]
    assert data["inner"]["deadline"] <= data["deadline"]  # not the default 30 s from later
    assert data["deadline"] - data["inner"]["deadline"] < 20


def test_nested_call_gives_up_at_the_callers_deadline(service: Service, tmp_path: Path) -> None:
    service.start(MODULES, concurrency=4)
    path = tmp_path / "waited.json"
    with service.client() as client:
        service.wait_ready(client, "obs.inner")
        with pytest.raises(Exception, match="within|expired"):
            client.get("obs.waits", headers={"path": str(path)}, timeout=2)
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    result = json.loads(path.read_text())
    assert result["outcome"].startswith("RequestTimeout")
    assert result["waited"] < 15  # the nested call's own default timeout is 30 s


def test_worker_log_line_shows_both_ids(service: Service) -> None:
    worker = service.start(MODULES, concurrency=4)
    with service.client() as client:
        service.wait_ready(client, "obs.inner")
        parent = client.get("obs.spawn", timeout=20).data
    # The ERROR line with the traceback, then the one INFO line per message: both name both ids.
    assert worker.wait_for_output(f"caused by {parent} ", timeout=30), worker.output
    lines = [line for line in worker.lines if f"caused by {parent}" in line]
    assert any("ERROR" in line and "POST 'obs.boom' (id " in line for line in lines), lines
    assert any("INFO" in line and line.endswith(" ms ValueError") for line in lines), lines


def test_calls_from_handlers_use_the_backend_and_url_given_to_the_worker(service: Service) -> None:
    # Nothing in the environment names the backend (the settings default is the in-process
    # memory backend): --backend and --url alone must carry the handlers' own calls too.
    env: dict[str, str | None] = {**service.env(), "ZC_EVENTS_BACKEND": None}
    argv = [sys.executable, "-m", "zc_events", "worker", "--backend", "rabbitmq"]
    argv += ["--url", AMQP_URL, *MODULES]
    with run_worker(argv=argv, env=env), service.client() as client:
        service.wait_ready(client, "obs.inner")
        data = client.get("obs.nested-backend", timeout=20).data
    assert data["backend"] == "rabbitmq"
    assert data["url"] == AMQP_URL
    assert data["answered_by"]  # the nested call went through the broker to this worker


# -- health --------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["rabbitmq", "rabbitmq_legacy"])
def test_health_command_answers_while_a_worker_runs(service: Service, backend: str) -> None:
    worker = service.start(("zc_events.testing.handlers",), backend=backend)
    deadline = time.monotonic() + 60
    while True:  # the worker logs "consuming" just before its bindings are all in place
        done = cli(service, "health", service.name, "--timeout", "10", backend=backend)
        if done.returncode == 0 or time.monotonic() > deadline:
            break
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("\n") == 1
    assert done.stdout.startswith(f"ok: {service.name!r} worker pid {worker.pid} ")
    worker.terminate()
    done = cli(service, "health", service.name, "--timeout", "2", backend=backend)
    assert done.returncode == 1
    assert done.stdout == f"unhealthy: no worker of {service.name!r} answered within 2 s\n"


def test_health_of_a_service_nobody_serves(service: Service) -> None:
    done = cli(service, "health", service.name, "--timeout", "5")
    assert done.returncode == 1
    assert done.stdout.startswith("unhealthy: ") and done.stdout.count("\n") == 1


def test_health_file_is_touched_while_consuming_and_removed_on_stop(
    service: Service, tmp_path: Path
) -> None:
    path = tmp_path / "alive"
    env = service.env()
    argv = [
        sys.executable,
        "-m",
        "zc_events",
        "worker",
        "--health-file",
        str(path),
        "--health-interval",
        "0.2",
        "zc_events.testing.handlers",
    ]
    with run_worker(argv=argv, env=env, ready=path.exists) as worker:
        first = path.stat().st_mtime_ns
        deadline = time.monotonic() + 30
        while path.stat().st_mtime_ns == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_mtime_ns > first, "the health file was not touched again"
        assert worker.terminate() == 0
    assert not path.exists()


# -- dead letters --------------------------------------------------------------------------------
def dead_letter_headers(why: str) -> dict[str, Any]:
    return {
        "x-zc-events-error": why,
        "x-zc-events-failed-at": "2026-01-31T12:00:00.000Z",
        "x-zc-events-attempts": 1,
    }


def test_dead_list_and_replay(
    service: Service, broker: Broker, tmp_path: Path, wait_for: Callable[..., Any]
) -> None:
    worker = service.start(MODULES)
    with service.client() as client:
        service.wait_ready(client, "obs.inner")
    # A message the worker cannot read: it copies it to the dead-letter queue with the reason.
    broker.publish(service.exchange, "obs.record", b"not json", message_id="garbage-1")
    wait_for(lambda: broker.count(f"{service.name}.dead") == 1, what="the rejected message")
    # A readable message a worker dead-lettered with the x-zc-events-* headers (a failed
    # no-wait handler), waiting for a replay once the handler is fixed.
    out = tmp_path / "replayed.json"
    envelope = Envelope.create("obs.record", "POST", {"path": str(out)})
    broker.publish(
        "",
        f"{service.name}.dead",
        envelope.encode(),
        message_id=envelope.id,
        headers={**dead_letter_headers("the handler failed"), "x-zc-events-queue": service.name},
    )

    listed = cli(service, "dead", "list", service.name)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ID", "KEY", "METHOD", "FIRST", "SEEN", "SIZE", "REASON"]
    garbage = next(line for line in lines if line.startswith("garbage-1 "))
    assert "decoding failed: EnvelopeError" in garbage and " 8 " in garbage
    readable = next(line for line in lines if line.startswith(envelope.id))
    assert "obs.record" in readable and "POST" in readable
    assert "2026-01-31T12:00:00" in readable and "the handler failed" in readable
    assert lines[-1] == f"2 dead letter(s) for {service.name!r}"
    assert broker.count(f"{service.name}.dead") == 2  # listing leaves them in place

    missing = cli(service, "dead", "replay", service.name, "--id", "no-such-id")
    assert missing.returncode == 1 and "no-such-id" in missing.stdout

    replayed = cli(service, "dead", "replay", service.name, "--id", envelope.id)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert f"replayed {envelope.id}" in replayed.stdout
    wait_for(out.exists, what="the replayed message to be handled")
    assert json.loads(out.read_text())["id"] == envelope.id
    assert broker.count(f"{service.name}.dead") == 1

    # The unreadable one cannot be replayed: it stays, and the command says why.
    everything = cli(service, "dead", "replay", service.name, "--all")
    assert everything.returncode == 1
    assert "garbage-1" in everything.stderr and "not a zc-events message" in everything.stderr
    assert broker.count(f"{service.name}.dead") == 1
    assert worker.poll() is None


def test_dead_list_of_an_unknown_service_says_so(service: Service) -> None:
    done = cli(service, "dead", "list", service.name)
    assert done.returncode == 2  # a configuration problem
    assert f"no dead-letter queue {service.name + '.dead'!r}" in done.stderr


def test_dead_replay_of_a_legacy_message_goes_back_to_its_queue(
    service: Service, broker: Broker, wait_for: Callable[..., Any]
) -> None:
    # A legacy request the old fleet sent, dead-lettered from <service>-events.
    body = json.dumps(
        [
            [
                "obs.inner",
                {
                    "data": None,
                    "id": "legacy-1",
                    "headers": {},
                    "response_key": None,
                    "_backend": {"type": "rabbitmqfanout", "method": "GET", "key": "obs.inner"},
                },
            ],
            {},
            {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
        ]
    ).encode()
    dead = f"{service.name}.dead"
    source = f"{service.name}-events"
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        channel = connection.channel()
        channel.queue_declare(dead, durable=True)
        channel.queue_declare(source, durable=True, arguments={"x-max-priority": 10})
        channel.confirm_delivery()
        channel.basic_publish(
            "",
            dead,
            body,
            pika.BasicProperties(
                content_type="application/json",
                content_encoding="utf-8",
                correlation_id="legacy-1",
                headers={
                    "lang": "py",
                    "task": "microservice.event",
                    "id": "legacy-1",
                    **dead_letter_headers("legacy dispatch failed"),
                    "x-zc-events-queue": source,
                },
            ),
        )
    finally:
        connection.close()
    listed = cli(service, "dead", "list", service.name, backend="rabbitmq_legacy")
    assert listed.returncode == 0, listed.stderr
    assert "obs.inner" in listed.stdout and "legacy dispatch failed" in listed.stdout
    done = cli(service, "dead", "replay", service.name, "--all", backend="rabbitmq_legacy")
    assert done.returncode == 0, done.stdout + done.stderr
    wait_for(lambda: broker.count(source) == 1, what="the legacy message back in its queue")
    assert broker.count(dead) == 0
    ((properties, replayed),) = broker.get_all(source)
    assert replayed == body
    assert not any(k.startswith("x-zc-events-") for k in properties.headers)
    assert properties.headers["task"] == "microservice.event"


def test_dead_replay_signs_the_copy_afresh(
    service: Service, broker: Broker, tmp_path: Path, wait_for: Callable[..., Any]
) -> None:
    from zc_events import HmacSigning

    signing = {
        "ZC_EVENTS_MIDDLEWARE": '["hmac_signing"]',
        "ZC_EVENTS_MIDDLEWARE_OPTIONS": '{"hmac_signing": {"secret": "replay-secret"}}',
    }
    service.start(MODULES, extra_env=signing)
    with service.client(middleware=[HmacSigning(secret="replay-secret")]) as client:
        service.wait_ready(client, "obs.inner")
    # A signed request whose caller gave up: a worker dead-lettered it.
    out = tmp_path / "signed.json"
    envelope = Envelope.create(
        "obs.record", "POST", {"path": str(out)}, timeout=0.001, reply_to="gone"
    )
    envelope = HmacSigning(secret="replay-secret").outgoing_request(envelope)
    broker.publish(
        "",
        f"{service.name}.dead",
        envelope.encode(),
        message_id=envelope.id,
        headers={**dead_letter_headers("the handler failed"), "x-zc-events-queue": service.name},
    )
    replayed = cli(service, "dead", "replay", service.name, "--id", envelope.id, extra_env=signing)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    wait_for(out.exists, what="the re-signed copy to be handled")
    assert json.loads(out.read_text())["id"] == envelope.id


def test_a_worker_stuck_in_its_handlers_is_not_consuming(
    service: Service, monkeypatch: pytest.MonkeyPatch, wait_for: Callable[..., Any]
) -> None:
    """What ``--health-file`` asks: a worker whose every thread hangs in a handler stops
    counting as consuming (its file goes stale), and counts again once they return."""
    import threading

    import zc_events_rabbitmq._worker as worker_module
    from zc_events import Dispatcher, HandlerRegistry, Settings
    from zc_events_rabbitmq import RabbitMQBackend

    monkeypatch.setattr(worker_module, "WEDGED_AFTER", 1.0)
    release = threading.Event()
    registry = HandlerRegistry()
    registry.register("obs.hang", lambda request: release.wait(60))
    backend = RabbitMQBackend(
        settings=Settings({"SERVICE_NAME": service.name}),
        exchange=service.exchange,
        url=AMQP_URL,
        concurrency=1,
    )
    serving = threading.Thread(target=backend.serve, args=(Dispatcher([registry]),))
    serving.start()
    try:
        wait_for(backend.is_consuming, what="the worker to consume")
        with service.client() as client:
            client.post_no_wait("obs.hang")
        wait_for(lambda: not backend.is_consuming(), what="the hung worker to stop counting")
        release.set()
        wait_for(backend.is_consuming, what="the worker to count again")
    finally:
        release.set()
        backend.stop()
        serving.join(60)
        backend.close()
    assert not serving.is_alive()
    assert not backend.is_consuming()
