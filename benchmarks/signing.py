"""The cost of ``hmac_signing`` on a native RabbitMQ ``get``, with and without signing, same run.

    python benchmarks/signing.py [--calls 2000]        (or: hatch run bench:signing)

Two ``zc-events worker --backend rabbitmq`` processes serve the conformance handlers, one with
``hmac_signing`` and one without; a client with signing calls the first, a client without calls
the second. The two take turns in blocks of 10 calls (after warm-up), so load from other
processes hits them alike. Prints p50/p90/p99 in ms and the ratio signed/unsigned (target:
at most 1.10), then the in-process cost of signing and verifying one request and its reply.
Needs RabbitMQ on 127.0.0.1:5672; every exchange and queue it creates is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rpc import Bench, Contender, sequential, until_ready

SECRET = "benchmark-secret"
DATA = {"x": 1, "y": 1}


def setup(bench: Bench, signed: bool) -> Contender:
    from zc_events import EventClient, HmacSigning

    label = "signed" if signed else "plain"
    exchange, service = bench.name(f"ex-{label}"), bench.name(f"svc-{label}")
    bench.queues += [service, f"{service}.dead"]
    bench.exchanges += [exchange, f"{exchange}.dead"]
    env = {"SERVICE_NAME": service, "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"exchange": exchange})}
    if signed:
        env["ZC_EVENTS_MIDDLEWARE"] = '["hmac_signing"]'
        env["ZC_EVENTS_MIDDLEWARE_OPTIONS"] = json.dumps({"hmac_signing": {"secret": SECRET}})
    proc = bench.worker("rabbitmq", env)
    client = EventClient(
        "rabbitmq", exchange=exchange, middleware=[HmacSigning(SECRET)] if signed else []
    )

    def call() -> Any:
        response = client.get("conformance.add", data=DATA)
        if not response.ok:
            raise RuntimeError(response.errors)
        return response

    until_ready(call, proc, f"the {label} worker")
    return Contender(f"get, {'with' if signed else 'without'} hmac_signing", call, client.close)


def in_process(n: int = 20_000) -> float:
    """Microseconds to sign a request, verify it, sign the reply and verify that."""
    from zc_events import Envelope, HmacSigning, Response

    client, server = HmacSigning(SECRET), HmacSigning(SECRET, replay_cache_size=n + 1)
    start = time.perf_counter()
    for _ in range(n):
        envelope = Envelope.create("conformance.add", "GET", DATA, timeout=30, reply_to="r")
        envelope = client.outgoing_request(envelope)
        server.incoming_request(envelope)
        response = server.outgoing_response(envelope, Response({"answer": 2}))
        client.incoming_response(envelope, response)
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    print(
        f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1 and 5 min), "
        f"{os.cpu_count()} cpus"
    )
    bench = Bench()
    try:
        plain, signed = setup(bench, False), setup(bench, True)
        samples = sequential([plain, signed], args.calls, block=10)
        rows = {}
        print(f"\n{'':32} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'calls/s':>9}")
        for name, values in samples.items():
            values.sort()
            p50, p90, p99 = (values[int(len(values) * q)] * 1000 for q in (0.5, 0.9, 0.99))
            rows[name] = (p50, statistics.fmean(values))
            print(f"{name:32} {p50:8.3f} {p90:8.3f} {p99:8.3f} {1 / statistics.fmean(values):9.0f}")
        (p50_plain, mean_plain), (p50_signed, mean_signed) = rows[plain.name], rows[signed.name]
        print(
            f"\nsigned / unsigned: p50 {p50_signed / p50_plain:.3f}, "
            f"mean {mean_signed / mean_plain:.3f} (target <= 1.10)"
        )
        plain.close()
        signed.close()
    finally:
        bench.cleanup()
    print(f"in process: sign + verify a request and its reply: {in_process():.1f} µs")


if __name__ == "__main__":
    main()
