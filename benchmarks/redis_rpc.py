"""``get`` over Redis Streams: the zc-events ``redis`` backend against a raw redis-py floor.

    python benchmarks/redis_rpc.py [--calls 2000] [--threads 8] [--no-legacy]

Needs Redis on 127.0.0.1:6379 (and RabbitMQ on 5672 for the ``rabbitmq_legacy`` column, whose
replies also come back through Redis). Every key it creates is under a unique prefix and
deleted at the end; the harness (interleaved blocks, percentiles) is the one of
``benchmarks/rpc.py``.

Contenders, each answered by its own server process:

1. the floor: a raw redis-py client and server doing what the transport does and nothing more:
   the client ``XADD``s the request to a stream and ``BLPOP``s its reply list; the server reads
   with ``XREADGROUP BLOCK``, ``RPUSH``es a fixed reply and ``XACK``s (pipelined);
2. zc-events ``redis``: ``client.get('conformance.add')`` served by ``zc-events worker``;
3. zc-events ``rabbitmq_legacy``: the same call over RabbitMQ with the reply through Redis.

Prints p50/p90/p99, calls/s and the p50 ratio to the floor, then calls/s with ``--threads``
client threads sharing one client.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rpc  # the shared harness next to this file

REDIS_URL = rpc.REDIS_URL
PREFIX = f"zc-events-bench-redis-{uuid.uuid4().hex[:10]}"


# -- the floor: raw redis-py ---------------------------------------------------------------------
def serve_floor(prefix: str) -> None:
    """The floor's server: read the stream in a group, push a fixed reply, ack (subprocess)."""
    r = redis.Redis.from_url(REDIS_URL)
    stream = f"{prefix}:floor"
    with contextlib.suppress(redis.ResponseError):  # the group exists
        r.xgroup_create(stream, "floor", id="$", mkstream=True)
    while True:
        read: Any = r.xreadgroup("floor", "server", {stream: ">"}, count=10, block=1000)
        for _, entries in read or ():
            pipe = r.pipeline(transaction=False)
            for entry_id, fields in entries:
                pipe.rpush(fields[b"r"], fields[b"c"] + b"\n" + rpc.ECHO)
                pipe.xack(stream, "floor", entry_id)
            pipe.execute()


class RawClient:
    """One per thread: XADD the request, BLPOP the reply from its own list."""

    def __init__(self, prefix: str) -> None:
        self.r = redis.Redis.from_url(REDIS_URL)
        self.stream = f"{prefix}:floor"
        self.reply = f"{prefix}:reply:{uuid.uuid4().hex}"

    def call(self) -> bytes:
        cid = uuid.uuid4().hex.encode()
        self.r.xadd(
            self.stream,
            {"c": cid, "r": self.reply, "b": b'{"x":1,"y":1}'},
            maxlen=100_000,
            approximate=True,
        )
        item: Any = self.r.blpop([self.reply], timeout=10)
        if item is None:
            raise TimeoutError("no reply from the raw redis-py server")
        got, _, body = item[1].partition(b"\n")
        assert got == cid
        return bytes(body)


def setup_floor(bench: rpc.Bench) -> rpc.Contender:
    proc = bench.spawn([sys.executable, __file__, "--serve-floor", PREFIX])
    call, made = rpc.per_thread(lambda: RawClient(PREFIX))
    rpc.until_ready(call, proc, "the raw redis-py server")

    def close() -> None:
        for client in made:
            client.r.close()

    return rpc.Contender("raw redis-py (floor)", call, close)


# -- zc-events ----------------------------------------------------------------------------------
def setup_redis(bench: rpc.Bench) -> rpc.Contender:
    from zc_events import EventClient

    options = {"prefix": PREFIX, "url": REDIS_URL}
    proc = bench.worker(
        "redis",
        {"SERVICE_NAME": bench.name("svc"), "ZC_EVENTS_BACKEND_OPTIONS": json.dumps(options)},
    )
    client = EventClient("redis", **options)

    def call() -> Any:
        return client.get("conformance.add", data={"x": 1, "y": 1}, timeout=5)

    rpc.until_ready(call, proc, "the zc-events redis worker")
    return rpc.Contender("zc-events redis", call, client.close)


def delete_keys() -> None:
    with redis.Redis.from_url(REDIS_URL) as r:
        keys = list(r.scan_iter(match=f"{PREFIX}:*", count=1000))
        if keys:
            r.delete(*keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--no-legacy", action="store_true", help="skip rabbitmq_legacy")
    parser.add_argument("--serve-floor", metavar="PREFIX", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_floor:
        serve_floor(args.serve_floor)
        return

    # Servers inherit this: no INFO line per handled message (the floor logs nothing either,
    # and nobody reads the servers' stderr pipes, which would fill and stall them).
    os.environ["ZC_EVENTS_LOG_MESSAGES"] = "0"
    setups = [setup_floor, setup_redis]
    if not args.no_legacy:
        setups.append(rpc.setup_rabbitmq_legacy)
    bench = rpc.Bench()
    contenders: list[rpc.Contender] = []
    try:
        for setup in setups:
            contenders.append(setup(bench))
        samples = rpc.sequential(contenders, args.calls)
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
                f"| {c.name:<28} | {rpc.pct(s, 0.5):6.3f} | {rpc.pct(s, 0.9):6.3f} "
                f"| {rpc.pct(s, 0.99):6.3f} | {single[c.name]:7.0f} | {ratio:10.2f}x |"
            )
        print(f"\n## {args.threads} client threads sharing one client, {args.calls} calls\n")
        print(f"| {'client':<28} | calls/s | vs 1 thread |")
        print(f"|{'-' * 30}|--------:|------------:|")
        for c in contenders:
            rate = rpc.threaded(c, args.threads, args.calls)
            print(f"| {c.name:<28} | {rate:7.0f} | {rate / single[c.name]:10.2f}x |")
        print(
            f"\n(python {sys.version.split()[0]}, redis-py {redis.__version__}, "
            f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}, "
            f"{threading.active_count()} threads)"
        )
    finally:
        for c in contenders:
            try:
                c.close()
            except Exception as exc:
                print(f"closing {c.name}: {exc!r}", file=sys.stderr)
        bench.cleanup()
        delete_keys()


if __name__ == "__main__":
    main()
