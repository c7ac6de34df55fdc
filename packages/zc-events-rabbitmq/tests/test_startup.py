"""What a user sees when a worker or a call cannot reach the broker, or the broker refuses it.

Each test runs the real ``zc-events`` command line in a subprocess and reads its output.
Unreachable brokers are simulated with a closed local port, and a broker that goes away and
comes back with a TCP forwarder to the local RabbitMQ that the test opens and closes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from zc_events import PublishError, ReplyError
from zc_events.testing import WorkerProcess, run_worker
from zc_events_rabbitmq.testing import delete_broker_objects

HANDLERS = "zc_events.testing.handlers"
BROKER = ("127.0.0.1", 5672)


def free_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call_at(url: str) -> subprocess.CompletedProcess[str]:
    """``zc-events call anything`` on the rabbitmq backend at ``url``."""
    env = {"ZC_EVENTS_BACKEND": "rabbitmq", "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"url": url})}
    return subprocess.run(
        [sys.executable, "-m", "zc_events", "call", "anything"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def wait_lines(
    worker: WorkerProcess, pattern: str, count: int = 1, timeout: float = 60
) -> list[str]:
    """Wait until ``count`` output lines match ``pattern`` (a regex); fail with the output."""
    deadline = time.monotonic() + timeout
    while True:
        found = [line for line in worker.lines if re.search(pattern, line)]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline or worker.poll() is not None:
            raise AssertionError(
                f"expected {count} line(s) matching {pattern!r}; output:\n{worker.output}"
            )
        time.sleep(0.05)


@pytest.fixture
def start_worker() -> Iterator[Any]:
    """Start ``zc-events worker ARGS`` processes (output merged); stopped after the test."""
    with ExitStack() as stack:

        def start(*args: str, env: dict[str, str]) -> WorkerProcess:
            argv = [sys.executable, "-m", "zc_events", "worker", *args]
            return stack.enter_context(run_worker(argv=argv, env=env, ready=None))

        yield start


class Forwarder:
    """A TCP forwarder from a local port to RabbitMQ: a broker the test can stop and start."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(BROKER)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for s in (source, target):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Close the port and every forwarded connection, as a stopping broker would."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


def worker_env(service: Any, **options: Any) -> dict[str, str]:
    return {
        "SERVICE_NAME": service.name,
        "ZC_EVENTS_BACKEND": "rabbitmq",
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"exchange": service.exchange, **options}),
    }


def assert_no_noise(output: str) -> None:
    assert "Traceback" not in output
    assert " ERROR " not in output
    assert "pika" not in output


# -- refused: exit 2 at once, one line ---------------------------------------------------------
@pytest.mark.rabbitmq
def test_wrong_password_exits_2_with_one_line(service: Any, start_worker: Any) -> None:
    secret = f"wrong-{uuid.uuid4().hex}"
    worker = start_worker(
        "--url", f"amqp://guest:{secret}@127.0.0.1:5672/%2F", HANDLERS, env=worker_env(service)
    )
    assert worker.wait(60) == 2
    assert worker.lines[-1] == (
        "zc-events: error: cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:5672/%2F: "
        "the broker refused the login (403 ACCESS_REFUSED - Login was refused using "
        "authentication mechanism PLAIN): check the user name and password in the URL"
    )
    assert secret not in worker.output
    assert "consuming" not in worker.output
    assert_no_noise(worker.output)


@pytest.mark.rabbitmq
def test_unknown_vhost_exits_2_with_one_line(service: Any, start_worker: Any) -> None:
    vhost = f"zc-events-test-{uuid.uuid4().hex[:8]}"
    url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    worker = start_worker("--url", url, HANDLERS, env=worker_env(service))
    assert worker.wait(60) == 2
    last = worker.lines[-1]
    assert last.startswith(
        f"zc-events: error: cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:5672/{vhost}: "
    ), last
    assert f"vhost {vhost} not found" in last
    assert "check the vhost" in last
    assert_no_noise(worker.output)


@pytest.fixture
def user_without_permissions() -> Iterator[tuple[str, str]]:
    """A RabbitMQ user that may connect to '/' but not declare anything (deleted after)."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        pytest.fail("rabbitmqctl is needed to create a test user")
    name, password = f"zc-events-test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex

    def run(*args: str) -> None:
        subprocess.run([ctl, "-q", *args], check=True, capture_output=True, timeout=120)

    run("add_user", name, password)
    try:
        run("set_permissions", "-p", "/", name, "^$", "^$", "^$")
        yield name, password
    finally:
        run("delete_user", name)


@pytest.mark.rabbitmq
def test_permission_error_exits_2_with_one_line(
    service: Any, start_worker: Any, user_without_permissions: tuple[str, str]
) -> None:
    user, password = user_without_permissions
    url = f"amqp://{user}:{password}@127.0.0.1:5672/%2F"
    worker = start_worker("--url", url, HANDLERS, env=worker_env(service))
    assert worker.wait(60) == 2
    last = worker.lines[-1]
    assert last.startswith(f"zc-events: error: RabbitMQ at amqp://{user}:***@127.0.0.1:5672/%2F")
    assert "403 ACCESS_REFUSED" in last
    assert "permissions" in last
    assert password not in worker.output
    assert_no_noise(worker.output)


@pytest.mark.rabbitmq
def test_call_with_a_wrong_password_is_one_line() -> None:
    result = call_at("amqp://guest:nope@127.0.0.1:5672/%2F")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "zc-events: error: cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:5672/%2F: "
        "the broker refused the login (403 ACCESS_REFUSED - Login was refused using "
        "authentication mechanism PLAIN): check the user name and password in the URL"
    ]


# -- unreachable: retried, one WARNING line per attempt ----------------------------------------
def test_call_against_a_closed_port_is_one_line() -> None:
    port = free_port()
    result = call_at(f"amqp://guest:secret@127.0.0.1:{port}/%2F")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"zc-events: error: cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:{port}/%2F: "
        "connection refused (is RabbitMQ running and listening on that host and port?)"
    ]


def test_worker_retries_an_unreachable_broker_one_warning_per_attempt(start_worker: Any) -> None:
    port = free_port()
    env = {"SERVICE_NAME": f"zc-events-test-{uuid.uuid4().hex[:8]}"}
    url = f"amqp://guest:secret@127.0.0.1:{port}/%2F"
    worker = start_worker(
        "--backend", "rabbitmq", "--url", url, "--concurrency", "4", HANDLERS, env=env
    )
    warnings = wait_lines(worker, r" WARNING .*cannot connect", count=3)
    for attempt, line in enumerate(warnings, 1):
        assert line.endswith(f"(attempt {attempt})"), (
            warnings
        )  # one line per attempt, not per thread
        assert f"cannot connect to RabbitMQ at amqp://guest:***@127.0.0.1:{port}/%2F: " in line
        assert "connection refused" in line
    assert "consuming" not in worker.output
    assert worker.terminate(60) == 0
    assert_no_noise(worker.output)
    assert "secret" not in worker.output


@pytest.mark.rabbitmq
def test_worker_says_consuming_once_connected_and_recovers_from_a_broker_restart(
    service: Any, start_worker: Any
) -> None:
    port = free_port()
    broker = Forwarder(port)
    url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
    worker = start_worker("--url", url, "--concurrency", "3", HANDLERS, env=worker_env(service))
    try:
        wait_lines(worker, "cannot connect", count=2)
        assert "consuming" not in worker.output  # not before it is connected
        broker.start()
        wait_lines(worker, "consuming")
        with service.client() as client:
            service.wait_ready(client)
            broker.stop()  # the broker goes away...
            wait_lines(worker, r" WARNING .*lost the connection to RabbitMQ")
            wait_lines(worker, "cannot connect", count=len(warnings_in(worker.lines)) + 2)
            broker.start()  # ...and comes back
            wait_lines(worker, "reconnected to RabbitMQ")
            assert client.get("conformance.add", data={"x": 1, "y": 2}).data == {"answer": 3}
        assert worker.terminate(60) == 0
    finally:
        broker.stop()
    lines = worker.lines
    assert len([line for line in lines if ": consuming " in line]) == 1
    assert len([line for line in lines if "lost the connection" in line]) == 1
    assert len([line for line in lines if "reconnected to RabbitMQ" in line]) == 1
    after_loss = next(i for i, line in enumerate(lines) if "lost the connection" in line)
    retries = [int(m) for m in re.findall(r"\(attempt (\d+)\)", "\n".join(lines[after_loss:]))]
    assert retries == list(range(1, len(retries) + 1)), retries  # one line per attempt
    assert_no_noise(worker.output)


def warnings_in(lines: list[str]) -> list[str]:
    return [line for line in lines if "cannot connect" in line]


# -- options on the command line ---------------------------------------------------------------
@pytest.mark.rabbitmq
def test_worker_options_override_settings(service: Any, start_worker: Any) -> None:
    queue = f"{service.name}-q"
    worker = start_worker(
        "--queue",
        queue,
        "--concurrency",
        "2",
        "--prefetch",
        "3",
        "--url",
        "amqp://guest:guest@127.0.0.1:5672/%2F",
        HANDLERS,
        env={**worker_env(service, url="amqp://guest:guest@127.0.0.1:1/%2F", concurrency=8)},
    )
    try:
        line = wait_lines(worker, "consuming")[0]
        assert (
            f"consuming {queue} at amqp://guest:***@127.0.0.1:5672/%2F with 2 thread(s), " in line
        )
        assert line.endswith("prefetch 3")
        assert worker.terminate(60) == 0
    finally:
        delete_broker_objects(queues=[queue, f"{queue}.dead"])


def test_rabbitmq_legacy_worker_has_no_queue_option(start_worker: Any) -> None:
    worker = start_worker(
        "--backend",
        "rabbitmq_legacy",
        "--queue",
        "q",
        HANDLERS,
        env={"SERVICE_NAME": "x", "EVENTS_EXCHANGE": "x"},
    )
    assert worker.wait(60) == 2
    assert worker.lines[-1].startswith(
        "zc-events: error: the 'rabbitmq_legacy' backend does not take --queue"
    )


# -- the legacy reply store --------------------------------------------------------------------
@pytest.mark.rabbitmq
def test_unreadable_reply_store_is_a_reply_error(service: Any) -> None:
    port = free_port()
    with (
        service.client("rabbitmq_legacy", redis_url=f"redis://127.0.0.1:{port}/0") as client,
        pytest.raises(ReplyError) as info,
    ):
        client.get("conformance.add", data={"x": 1, "y": 2}, timeout=5)
    assert not isinstance(info.value, PublishError)  # it was published: do not retry blindly
    message = str(info.value)
    assert "'conformance.add'" in message
    assert "was published" in message
    assert f"reply store, Redis at 127.0.0.1:{port}/0" in message
