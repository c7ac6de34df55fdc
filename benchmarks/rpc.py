"""Round trips and fire-and-forget over the local RabbitMQ, against the raw-pika floor.

    python benchmarks/rpc.py [--calls 2000] [--threads 8] [--messages 5000] [--only NAME ...]

Needs RabbitMQ on 127.0.0.1:5672 (and Redis on 6379 for the legacy and Celery columns). Every
exchange and queue it creates has a unique name and is deleted at the end.

Tables:

1. ``get``: each contender answers 2,000 sequential calls (after warm-up) from its own server
   process. The contenders run interleaved in blocks, so load from other processes on the
   machine hits them alike. p50/p90/p99 in ms, calls/s, and the p50 ratio to the floor: a raw
   pika direct reply-to client and server that do nothing but echo.
2. Fire-and-forget into a queue nobody consumes: raw pika ``basic_publish`` without confirms
   (the baseline), zc-events ``post_no_wait`` (one publisher confirm each), and a zc-events
   batch (confirms pipelined, one wait).
3. ``threads`` client threads sharing one client against the same servers: calls/s and the
   ratio to one thread.

To add a transport, write ``setup_x(bench) -> Contender`` and append ``("name", setup_x)`` to
``CONTENDERS``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pika

ROOT = Path(__file__).resolve().parents[1]
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
ECHO = b'{"data":{"answer":2},"has_errors":false,"errors":[]}'


# -- the harness ---------------------------------------------------------------------------------
@dataclass
class Contender:
    """One way of doing a ``get``: ``call()`` is thread-safe; ``close()`` tears it down."""

    name: str
    call: Callable[[], Any]
    close: Callable[[], None] = lambda: None


@dataclass
class Bench:
    """Shared state: unique names, and what to clean up at the end."""

    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)
    exchanges: list[str] = field(default_factory=list)

    def name(self, what: str) -> str:
        return f"zc-events-bench-{what}-{self.suffix}"

    def spawn(self, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        # stderr to a file, not an unread pipe: a worker logs a line per message and would block
        # once a pipe's buffer is full.
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=log
        )
        proc.stderr = log
        self.processes.append(proc)
        return proc

    def worker(self, backend: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """``zc-events worker --backend NAME zc_events.testing.handlers`` with ``env``."""
        env = {"ZC_EVENTS_BACKEND": backend, **env}
        return self.spawn(
            [sys.executable, "-m", "zc_events", "worker", "zc_events.testing.handlers"], env
        )

    def cleanup(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        channel = conn.channel()
        for queue in self.queues:
            channel.queue_delete(queue)
        for exchange in self.exchanges:
            channel.exchange_delete(exchange)
        conn.close()


def until_ready(call: Callable[[], Any], proc: subprocess.Popen[bytes], what: str) -> None:
    """Call until it succeeds (the server is up), or fail with the server's stderr."""
    deadline = time.monotonic() + 30
    while True:
        try:
            call()
            return
        except Exception as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                err = ""
                if proc.stderr and proc.poll() is not None:
                    proc.stderr.seek(0)
                    err = proc.stderr.read().decode(errors="replace")[-5000:]
                raise SystemExit(f"{what} did not come up: {exc!r}\n{err}") from exc
            time.sleep(0.2)


# -- the floor: raw pika, direct reply-to ----------------------------------------------------------
def serve_floor(queue: str) -> None:
    """The floor's server: consume ``queue`` and echo a fixed reply (run in a subprocess)."""
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = conn.channel()
    channel.queue_declare(queue, auto_delete=True)

    def on_request(ch: Any, method: Any, props: Any, body: bytes) -> None:
        ch.basic_publish(
            "", props.reply_to, ECHO, pika.BasicProperties(correlation_id=props.correlation_id)
        )
        ch.basic_ack(method.delivery_tag)

    channel.basic_qos(prefetch_count=10)
    channel.basic_consume(queue, on_request)
    channel.start_consuming()


class RawRpcClient:
    """The pika tutorial's RPC client, with direct reply-to. One per thread."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
        self.channel = self.conn.channel()
        self.channel.queue_declare(queue, auto_delete=True)  # requests wait for the server
        self.replies: dict[str, bytes] = {}
        self.channel.basic_consume("amq.rabbitmq.reply-to", self._on_reply, auto_ack=True)

    def _on_reply(self, ch: Any, method: Any, props: Any, body: bytes) -> None:
        self.replies[props.correlation_id] = body

    def call(self) -> bytes:
        cid = str(uuid.uuid4())
        self.channel.basic_publish(
            "",
            self.queue,
            b'{"x":1,"y":1}',
            pika.BasicProperties(reply_to="amq.rabbitmq.reply-to", correlation_id=cid),
        )
        deadline = time.monotonic() + 10
        while cid not in self.replies:
            self.conn.process_data_events(time_limit=1)
            if time.monotonic() > deadline:
                raise TimeoutError("no reply from the raw pika server")
        return self.replies.pop(cid)


def per_thread(factory: Callable[[], Any]) -> tuple[Callable[[], Any], list[Any]]:
    """A thread-safe ``call`` built from one raw client per thread."""
    local = threading.local()
    made: list[Any] = []

    def call() -> Any:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = factory()
            made.append(client)
        return client.call()

    return call, made


def setup_floor(bench: Bench) -> Contender:
    queue = bench.name("floor")
    proc = bench.spawn([sys.executable, __file__, "--serve-floor", queue])
    call, made = per_thread(lambda: RawRpcClient(queue))
    until_ready(call, proc, "the raw pika server")

    def close() -> None:
        for client in made:
            client.conn.close()

    return Contender("raw pika (floor)", call, close)


# -- zc-events ----------------------------------------------------------------------------------
def setup_rabbitmq(bench: Bench) -> Contender:
    from zc_events import EventClient

    exchange, service = bench.name("ex"), bench.name("svc")
    bench.queues += [service, f"{service}.dead"]
    bench.exchanges += [exchange, f"{exchange}.dead"]
    proc = bench.worker(
        "rabbitmq",
        {"SERVICE_NAME": service, "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"exchange": exchange})},
    )
    client = EventClient("rabbitmq", exchange=exchange)

    def call() -> Any:
        return client.get("conformance.add", data={"x": 1, "y": 1})

    until_ready(call, proc, "the zc-events rabbitmq worker")
    return Contender("zc-events rabbitmq", call, client.close)


def setup_rabbitmq_legacy(bench: Bench) -> Contender:
    from zc_events import EventClient

    exchange, service = bench.name("fanout"), bench.name("legacy")
    bench.queues += [f"{service}-events", f"{service}.dead"]
    bench.exchanges += [exchange]
    options = {"events_exchange": exchange, "redis_url": REDIS_URL}
    proc = bench.worker(
        "rabbitmq_legacy",
        {"SERVICE_NAME": service, "ZC_EVENTS_BACKEND_OPTIONS": json.dumps(options)},
    )
    client = EventClient("rabbitmq_legacy", **options)

    def call() -> Any:
        return client.get("conformance.add", data={"x": 1, "y": 1}, timeout=5)

    until_ready(call, proc, "the zc-events rabbitmq_legacy worker")
    return Contender("zc-events rabbitmq_legacy", call, client.close)


# -- Celery: zc-events over Celery, and plain Celery RPC (zc-events-celery) ------------------------
_celery_worker: dict[str, Any] = {}


def _celery_example(bench: Bench) -> dict[str, Any]:
    """One ``celery -A proj worker -P threads`` of examples/celery, shared by both Celery rows."""
    if not _celery_worker:
        example = ROOT / "examples" / "celery"
        service, exchange, tasks = (
            bench.name("celery"),
            bench.name("celery-fanout"),
            bench.name("celery-q"),
        )
        bench.queues += [f"{service}-events", tasks]
        bench.exchanges += [exchange, tasks]
        env = {
            "SERVICE_NAME": service,
            "EVENTS_EXCHANGE": exchange,
            "PROJ_EVENTS_EXCHANGE": exchange,
            "EVENTS_REDIS_URL": REDIS_URL,
            "PROJ_TASK_QUEUE": tasks,
            "CELERY_BROKER_URL": AMQP_URL,
            "CELERY_RESULT_BACKEND": REDIS_URL,
        }
        os.environ.update(env)  # the client side imports the same app
        sys.path.insert(0, str(example))
        proc = bench.spawn(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "proj",
                "worker",
                "-P",
                "threads",
                "-c",
                "8",
                "-l",
                "WARNING",
                "--without-mingle",
                "--without-gossip",
                "--without-heartbeat",
                "-Q",
                f"{service}-events,{tasks}",
            ],
            {**env, "PYTHONPATH": str(example)},
        )
        _celery_worker.update(proc=proc, service=service)
    return _celery_worker


def setup_celery(bench: Bench) -> Contender:
    """zc-events ``get`` over the ``celery`` backend, through the service's own Celery app."""
    from zc_events import EventClient

    proc = _celery_example(bench)["proc"]
    client = EventClient("celery", app="proj.celery:app", redis_url=REDIS_URL)

    def call() -> Any:
        return client.get("add", data={"x": 1, "y": 1}, timeout=5)

    until_ready(call, proc, "the celery worker of examples/celery")
    return Contender("zc-events celery", call, client.close)


def setup_plain_celery(bench: Bench) -> Contender:
    """Plain Celery RPC: ``add.apply_async((1, 1)).get()`` with the Redis result backend."""
    proc = _celery_example(bench)["proc"]
    from proj.celery import add  # type: ignore[import-not-found]

    def call() -> Any:
        return add.apply_async((1, 1)).get(timeout=5)

    until_ready(call, proc, "the celery worker of examples/celery")
    return Contender("plain celery apply_async.get", call)


#: (name, setup) — the first is the floor every ratio is taken against.
CONTENDERS: list[tuple[str, Callable[[Bench], Contender]]] = [
    ("floor", setup_floor),
    ("rabbitmq", setup_rabbitmq),
    ("rabbitmq_legacy", setup_rabbitmq_legacy),
    ("celery", setup_celery),
    ("plain_celery", setup_plain_celery),
]


# -- fire and forget ------------------------------------------------------------------------------
def fire_and_forget(bench: Bench, messages: int) -> list[tuple[str, int, float]]:
    """Rates into a durable queue nobody consumes: (name, messages, msg/s)."""
    from zc_events import EventClient

    exchange, sink = bench.name("sink-ex"), bench.name("sink")
    bench.queues.append(sink)
    bench.exchanges.append(exchange)
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = conn.channel()
    channel.exchange_declare(exchange, "topic", durable=True)
    channel.queue_declare(sink, durable=True, arguments={"x-max-priority": 10})
    channel.queue_bind(sink, exchange, routing_key="bench.sink")
    client = EventClient("rabbitmq", exchange=exchange)
    data = {"x": 1, "y": 1}
    body = b'{"x":1,"y":1}'
    results = []

    def raw() -> None:
        props = pika.BasicProperties(content_type="application/json", delivery_mode=2)
        for _ in range(messages):
            channel.basic_publish(exchange, "bench.sink", body, props)

    def no_wait() -> None:
        for _ in range(no_wait_count):
            client.post_no_wait("bench.sink", data=data)

    def batch() -> None:
        with client.batch() as b:
            for _ in range(messages):
                b.post_no_wait("bench.sink", data=data)

    def settle(n: int) -> None:
        """Wait until the broker has taken every message (raw publishes return before), then
        empty the queue, so one run's backlog does not slow the next."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if channel.queue_declare(sink, passive=True).method.message_count >= n:
                break
            time.sleep(0.01)
        channel.queue_purge(sink)

    no_wait_count = min(messages, 1000)
    client.post_no_wait("bench.sink", data=data)  # connect
    settle(1)
    runs = [
        ("raw pika basic_publish, no confirms", raw, messages),
        ("zc-events post_no_wait (confirm each)", no_wait, no_wait_count),
        ("zc-events batch (confirms pipelined)", batch, messages),
    ]
    rates: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    for _ in range(5):  # interleaved, like the get table
        for name, fn, n in runs:
            started = time.perf_counter()
            fn()
            rates[name].append(n / (time.perf_counter() - started))
            settle(n)
    results = [(name, n, statistics.median(rates[name])) for name, _, n in runs]
    client.close()
    conn.close()
    return results


# -- measuring ------------------------------------------------------------------------------------
def sequential(contenders: list[Contender], calls: int, block: int = 100) -> dict[str, list[float]]:
    """Latencies in seconds; contenders take turns in blocks of ``block`` calls."""
    samples: dict[str, list[float]] = {c.name: [] for c in contenders}
    for c in contenders:  # warm-up
        for _ in range(max(200, calls // 10)):
            c.call()
    clock = time.perf_counter
    for _ in range(max(1, calls // block)):
        for c in contenders:
            out = samples[c.name]
            call = c.call
            for _ in range(block):
                t = clock()
                call()
                out.append(clock() - t)
    return samples


def threaded(contender: Contender, threads: int, calls: int) -> float:
    """Calls/s of ``threads`` threads sharing ``contender``, ``calls`` in all."""
    each = max(1, calls // threads)
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def run() -> None:
        contender.call()  # connect outside the timed part
        barrier.wait()
        try:
            for _ in range(each):
                contender.call()
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return each * threads / elapsed


def pct(sorted_samples: list[float], q: float) -> float:
    return sorted_samples[min(len(sorted_samples) - 1, int(len(sorted_samples) * q))] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--only", nargs="*", help="contender names to run (the floor always runs)")
    parser.add_argument("--serve-floor", metavar="QUEUE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(args.serve_floor)
        return

    bench = Bench()
    contenders: list[Contender] = []
    try:
        for name, setup in CONTENDERS:
            if args.only and name != "floor" and name not in args.only:
                continue
            try:
                contenders.append(setup(bench))
            except (ImportError, SystemExit) as exc:
                print(f"skipping {name}: {exc}", file=sys.stderr)
        samples = sequential(contenders, args.calls)
        floor = statistics.median(samples[contenders[0].name])
        print(f"\n## get: {args.calls} sequential calls each (interleaved blocks), 1 thread\n")
        print(f"| {'client':<28} | p50 ms | p90 ms | p99 ms | calls/s | p50 / floor |")
        print(f"|{'-' * 30}|-------:|-------:|-------:|--------:|------------:|")
        single: dict[str, float] = {}
        for c in contenders:
            s = sorted(samples[c.name])
            single[c.name] = len(s) / sum(s)
            ratio = statistics.median(s) / floor
            print(
                f"| {c.name:<28} | {pct(s, 0.5):6.3f} | {pct(s, 0.9):6.3f} | {pct(s, 0.99):6.3f} "
                f"| {single[c.name]:7.0f} | {ratio:10.2f}x |"
            )

        print(f"\n## fire-and-forget into a durable queue, {args.messages} messages\n")
        rates = fire_and_forget(bench, args.messages)
        baseline = rates[0][2]
        print(f"| {'publisher':<38} | messages | msg/s  | vs raw |")
        print(f"|{'-' * 40}|---------:|-------:|-------:|")
        for name, n, rate in rates:
            print(f"| {name:<38} | {n:8d} | {rate:6.0f} | {rate / baseline:5.2f}x |")

        print(f"\n## {args.threads} client threads sharing one client, {args.calls} calls\n")
        print(f"| {'client':<28} | calls/s | vs 1 thread |")
        print(f"|{'-' * 30}|--------:|------------:|")
        for c in contenders:
            rate = threaded(c, args.threads, args.calls)
            print(f"| {c.name:<28} | {rate:7.0f} | {rate / single[c.name]:10.2f}x |")
        print(
            f"\n(python {sys.version.split()[0]}, pika {pika.__version__}, "
            f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f})"
        )
    finally:
        for c in contenders:
            try:
                c.close()
            except Exception as exc:
                print(f"closing {c.name}: {exc!r}", file=sys.stderr)
        bench.cleanup()


if __name__ == "__main__":
    main()
