"""The asyncio client over the local RabbitMQ, against raw aiormq, the sync client and FastStream.

    python benchmarks/async_rpc.py [--calls 2000] [--concurrency 100] [--messages 5000]

Needs RabbitMQ on 127.0.0.1:5672 and the bench environment (``hatch run bench:async``), which
has aio-pika and ``faststream[rabbit]``. Every exchange and queue it creates has a unique name
and is deleted at the end. Each table runs its contenders in the same run, interleaved in
rounds, so load from other processes on the machine hits them alike, and prints the ratios the
targets are stated in:

1. Sequential ``get`` latency: a raw aiormq direct reply-to client and server that only echo
   (the floor), against ``AsyncEventClient.get`` to a ``zc-events worker``. Target: p50 ≤ 1.1x.
2. ``concurrency`` gets in flight at once from one ``AsyncEventClient`` (one connection) to one
   ``zc-events worker`` with ``prefetch=100``: calls/s against the sync ``EventClient``'s
   sequential calls/s to the same worker (target ≥ 4x), and against FastStream's
   ``broker.request`` with the same number in flight to a FastStream subscriber doing the same
   work (target: zc-events ≥ 3x).
3. Fire-and-forget into a durable queue nobody consumes: an ``AsyncEventClient`` batch (every
   message persistent and confirmed) against raw aio-pika publishing persistent messages without
   confirms. Target ≥ 0.8x.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
ECHO = b'{"data":{"answer":2},"has_errors":false,"errors":[]}'
SUFFIX = uuid.uuid4().hex[:10]


def name(what: str) -> str:
    return f"zc-events-bench-{what}-{SUFFIX}"


# -- servers (each runs in its own process) -------------------------------------------------------
async def serve_floor(queue: str) -> None:
    """The floor's server: raw aiormq, echo a fixed reply to the direct reply-to address."""
    import aiormq
    from pamqp import commands as spec

    connection = await aiormq.connect(AMQP_URL)
    channel = await connection.channel(publisher_confirms=False)
    await channel.queue_declare(queue, auto_delete=True)
    await channel.basic_qos(prefetch_count=100)

    async def on_request(message: Any) -> None:
        props = message.header.properties
        await channel.basic_publish(
            ECHO,
            routing_key=props.reply_to,
            properties=spec.Basic.Properties(correlation_id=props.correlation_id),
        )
        await channel.basic_ack(message.delivery.delivery_tag)

    await channel.basic_consume(queue, on_request)
    await asyncio.Future()


async def serve_faststream(queue: str) -> None:
    """A FastStream subscriber doing the work of ``conformance.add``."""
    from faststream.rabbit import RabbitBroker

    broker = RabbitBroker(AMQP_URL, logger=None)

    @broker.subscriber(queue)
    async def add(data: dict[str, int]) -> dict[str, Any]:
        return {"data": {"answer": data["x"] + data["y"]}, "has_errors": False, "errors": []}

    await broker.start()
    await asyncio.Future()


# -- clients --------------------------------------------------------------------------------------
class RawClient:
    """The floor's client: raw aiormq, direct reply-to, replies matched by correlation id."""

    async def start(self, queue: str) -> None:
        import aiormq
        from pamqp import commands as spec

        self.spec = spec
        self.queue = queue
        self.connection = await aiormq.connect(AMQP_URL)
        self.channel = await self.connection.channel(publisher_confirms=False)
        await self.channel.queue_declare(queue, auto_delete=True)
        self.waiters: dict[str, asyncio.Future[bytes]] = {}
        await self.channel.basic_consume("amq.rabbitmq.reply-to", self._on_reply, no_ack=True)

    def _on_reply(self, message: Any) -> None:
        waiter = self.waiters.pop(message.header.properties.correlation_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(message.body)

    async def call(self) -> bytes:
        cid = uuid.uuid4().hex
        waiter = asyncio.get_running_loop().create_future()
        self.waiters[cid] = waiter
        await self.channel.basic_publish(
            b'{"x":1,"y":1}',
            routing_key=self.queue,
            properties=self.spec.Basic.Properties(
                reply_to="amq.rabbitmq.reply-to", correlation_id=cid
            ),
        )
        return await asyncio.wait_for(waiter, 10)

    async def close(self) -> None:
        await self.connection.close()


def spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # stderr to a file, not an unread pipe: a worker logs a line per message and would block
    # once a pipe's buffer is full.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        args, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=log
    )
    proc.stderr = log
    return proc


async def until_ready(call: Callable[[], Awaitable[Any]], proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            await asyncio.wait_for(call(), 2)
            return
        except Exception as exc:
            if proc.poll() is not None or time.monotonic() > deadline:
                err = ""
                if proc.stderr and proc.poll() is not None:
                    proc.stderr.seek(0)
                    err = proc.stderr.read().decode(errors="replace")[-5000:]
                raise SystemExit(f"server did not come up: {exc!r}\n{err}") from exc
            await asyncio.sleep(0.2)


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1e3


async def timed_sequential(call: Callable[[], Awaitable[Any]], n: int, out: list[float]) -> None:
    clock = time.perf_counter
    for _ in range(n):
        t = clock()
        await call()
        out.append(clock() - t)


async def rate_concurrent(call: Callable[[], Awaitable[Any]], calls: int, width: int) -> float:
    """Calls/s with ``width`` calls in flight at all times, ``calls`` in all."""
    left = calls

    async def lane() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(width)))
    return calls / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    import aio_pika
    from faststream.rabbit import RabbitBroker

    from zc_events import AsyncEventClient, EventClient
    from zc_events_rabbitmq.testing import delete_broker_objects

    floor_q, fs_q = name("floor"), name("faststream")
    exchange, service = name("ex"), name("svc")
    sink_ex, sink = name("sink-ex"), name("sink")
    queues = [floor_q, fs_q, service, f"{service}.dead", sink]
    exchanges = [exchange, f"{exchange}.dead", sink_ex]
    procs: list[subprocess.Popen[bytes]] = []
    closers: list[Callable[[], Awaitable[Any]]] = []
    try:
        procs.append(spawn([sys.executable, __file__, "--serve-floor", floor_q]))
        procs.append(spawn([sys.executable, __file__, "--serve-faststream", fs_q]))
        options = {"exchange": exchange, "prefetch": 100}
        procs.append(
            spawn(
                [sys.executable, "-m", "zc_events", "worker", "zc_events.testing.handlers"],
                {
                    "ZC_EVENTS_BACKEND": "rabbitmq",
                    "SERVICE_NAME": service,
                    "ZC_EVENTS_BACKEND_OPTIONS": json.dumps(options),
                },
            )
        )
        raw = RawClient()
        await raw.start(floor_q)
        closers.append(raw.close)
        await until_ready(raw.call, procs[0])

        client = AsyncEventClient("rabbitmq", exchange=exchange)
        closers.append(client.aclose)

        async def zc_get() -> Any:
            return await client.get("conformance.add", data={"x": 1, "y": 1})

        await until_ready(zc_get, procs[2])
        sync_client = EventClient("rabbitmq", exchange=exchange)

        fs_broker = RabbitBroker(AMQP_URL, logger=None)
        await fs_broker.connect()
        closers.append(fs_broker.stop)

        async def fs_get() -> Any:
            message = await fs_broker.request({"x": 1, "y": 1}, fs_q, timeout=10)
            return await message.decode()

        await until_ready(fs_get, procs[1])

        # 1. sequential latency, interleaved blocks of 100
        samples: dict[str, list[float]] = {"raw aiormq (floor)": [], "zc-events async get": []}
        for _ in range(2):
            await timed_sequential(raw.call, 200, [])
            await timed_sequential(zc_get, 200, [])
        for _ in range(max(1, args.calls // 100)):
            await timed_sequential(raw.call, 100, samples["raw aiormq (floor)"])
            await timed_sequential(zc_get, 100, samples["zc-events async get"])
        floor_p50 = statistics.median(samples["raw aiormq (floor)"])
        print(f"\n## get: {args.calls} sequential calls each (interleaved blocks)\n")
        print(f"| {'client':<24} | p50 ms | p90 ms | p99 ms | p50 / floor |")
        print(f"|{'-' * 26}|-------:|-------:|-------:|------------:|")
        for label, s in samples.items():
            print(
                f"| {label:<24} | {pct(s, 0.5):6.3f} | {pct(s, 0.9):6.3f} | {pct(s, 0.99):6.3f} "
                f"| {statistics.median(s) / floor_p50:10.2f}x |"
            )
        zc_ratio = statistics.median(samples["zc-events async get"]) / floor_p50

        # 2. many in flight, against the sync client's sequential rate and FastStream
        n, width = args.calls, args.concurrency
        rates: dict[str, list[float]] = {"async": [], "sync": [], "faststream": []}
        for _ in range(3):
            started = time.perf_counter()
            await asyncio.to_thread(
                lambda: [
                    sync_client.get("conformance.add", data={"x": 1, "y": 1}) for _ in range(n // 4)
                ]
            )
            rates["sync"].append((n // 4) / (time.perf_counter() - started))
            rates["async"].append(await rate_concurrent(zc_get, n, width))
            rates["faststream"].append(await rate_concurrent(fs_get, n, width))
        r = {k: statistics.median(v) for k, v in rates.items()}
        print(
            f"\n## {width} gets in flight from one client to one worker, {n} calls (median of 3)\n"
        )
        rows = [
            (f"zc-events AsyncEventClient, {width} in flight", r["async"]),
            ("zc-events EventClient, sequential", r["sync"]),
            (f"FastStream broker.request, {width} in flight", r["faststream"]),
        ]
        print(f"| {'client':<44} | calls/s |")
        print(f"|{'-' * 46}|--------:|")
        for label, rate in rows:
            print(f"| {label:<44} | {rate:7.0f} |")

        # 3. fire-and-forget
        import aiormq

        admin = await aiormq.connect(AMQP_URL)
        closers.append(admin.close)
        ch = await admin.channel(publisher_confirms=False)
        await ch.exchange_declare(sink_ex, exchange_type="topic", durable=True)
        await ch.queue_declare(sink, durable=True, arguments={"x-max-priority": 10})
        await ch.queue_bind(sink, sink_ex, routing_key="bench.sink")
        pika_conn = await aio_pika.connect(AMQP_URL)
        closers.append(pika_conn.close)
        pika_ch = await pika_conn.channel(publisher_confirms=False)
        pika_ex = await pika_ch.get_exchange(sink_ex)
        sink_client = AsyncEventClient("rabbitmq", exchange=sink_ex)
        closers.append(sink_client.aclose)
        await sink_client.post_no_wait("bench.sink", data={"x": 1, "y": 1})
        body = b'{"x":1,"y":1}'

        async def settle(count: int) -> None:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                declared = await ch.queue_declare(sink, passive=True)
                if declared.message_count >= count:
                    break
                await asyncio.sleep(0.01)
            await ch.queue_purge(sink)

        m = args.messages
        pub: dict[str, list[float]] = {"raw": [], "batch": []}
        await settle(1)
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(m):
                await pika_ex.publish(
                    aio_pika.Message(
                        body,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key="bench.sink",
                )
            pub["raw"].append(m / (time.perf_counter() - started))
            await settle(m)
            started = time.perf_counter()
            async with sink_client.batch() as batch:
                for _ in range(m):
                    batch.post_no_wait("bench.sink", data={"x": 1, "y": 1})
            pub["batch"].append(m / (time.perf_counter() - started))
            await settle(m)
        p = {k: statistics.median(v) for k, v in pub.items()}
        print(f"\n## fire-and-forget into a durable queue, {m} persistent messages (median of 3)\n")
        print(f"| {'publisher':<46} | msg/s  |")
        print(f"|{'-' * 48}|-------:|")
        print(f"| {'raw aio-pika publish, no confirms':<46} | {p['raw']:6.0f} |")
        print(f"| {'zc-events async batch, every message confirmed':<46} | {p['batch']:6.0f} |")

        print("\n## ratios (target)\n")
        print(f"- async get p50 / raw aiormq p50: {zc_ratio:.2f}x (≤ 1.1x)")
        print(f"- {width} in flight / sync sequential: {r['async'] / r['sync']:.2f}x (≥ 4x)")
        print(
            f"- {width} in flight / FastStream request: {r['async'] / r['faststream']:.2f}x (≥ 3x)"
        )
        print(f"- async batch / raw aio-pika: {p['batch'] / p['raw']:.2f}x (≥ 0.8x)")
        from importlib.metadata import version

        print(
            f"\n(python {sys.version.split()[0]}, aiormq {version('aiormq')}, aio-pika "
            f"{version('aio-pika')}, faststream {version('faststream')}, {os.cpu_count()} cpus, "
            f"load average {os.getloadavg()[0]:.2f})"
        )
        sync_client.close()
    finally:
        for close in reversed(closers):
            try:
                await close()
            except Exception as exc:
                print(f"closing: {exc!r}", file=sys.stderr)
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        delete_broker_objects(queues, exchanges, url=AMQP_URL)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--serve-floor", metavar="QUEUE", help=argparse.SUPPRESS)
    parser.add_argument("--serve-faststream", metavar="QUEUE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        asyncio.run(serve_floor(args.serve_floor))
    elif args.serve_faststream:
        asyncio.run(serve_faststream(args.serve_faststream))
    else:
        asyncio.run(main(args))


if __name__ == "__main__":
    cli()
