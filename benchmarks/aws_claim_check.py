"""Cost of the s3_claim_check middleware on the memory backend, against a local moto S3 server.

    python benchmarks/aws_claim_check.py [ROUNDS]

Each payload size is sent as a waiting ``post`` to an echo handler, so both the request and the
response are that size. Columns: the median time without middleware (the baseline), the median
time with ``s3_claim_check`` (default 128 KiB threshold; larger bodies make six S3 calls: put,
get and delete of the request, then of the response), their ratio, and the bytes the transport
carried for the request. Small messages show the cost of the size check alone. moto runs on the
same machine, so the S3 times are a floor; a real S3 region adds tens of milliseconds per call.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time

from zc_events import Dispatcher, Envelope, EventClient, HandlerRegistry, Middleware, Request

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
SIZES = [100, 16 * 1024, 256 * 1024, 1024 * 1024, 8 * 1024 * 1024, 20 * 1024 * 1024]


class WireSize(Middleware):
    def __init__(self) -> None:
        self.last = 0

    def outgoing_request(self, envelope: Envelope) -> Envelope:
        self.last = len(envelope.encode())
        return envelope


def echo(request: Request) -> object:
    return request.data


def timed(client: EventClient, data: object, rounds: int) -> float:
    client.post("echo", data=data, timeout=120)  # warm up
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.post("echo", data=data, timeout=120)
        samples.append(time.perf_counter() - started)
        assert response.data == data, response.errors
    return statistics.median(samples)


def main() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        os.environ.update(
            AWS_S3_ENDPOINT_URL=f"http://127.0.0.1:{port}",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_REGION="us-east-1",
        )
        from zc_events_aws import S3ClaimCheck, s3_client

        s3_client().create_bucket(Bucket="zc-events-bench")
        registry = HandlerRegistry({"echo": echo})
        plain = EventClient("memory", dispatcher=Dispatcher([registry]))
        wire = WireSize()
        checked = EventClient(
            "memory",
            dispatcher=Dispatcher([registry], [S3ClaimCheck(bucket="zc-events-bench")]),
            middleware=[S3ClaimCheck(bucket="zc-events-bench"), wire],
        )
        print(
            f"{'payload':>10} {'plain ms':>10} {'claim-check ms':>15} {'ratio':>7} "
            f"{'on the wire':>12}"
        )
        for size in SIZES:
            data = "x" * size
            rounds = ROUNDS if size > 1024 * 1024 else ROUNDS * 20
            base = timed(plain, data, rounds)
            with_check = timed(checked, data, rounds)
            print(
                f"{size:>10} {base * 1e3:>10.2f} {with_check * 1e3:>15.2f} "
                f"{with_check / base:>7.2f} {wire.last:>12}"
            )
        left = s3_client().list_objects_v2(Bucket="zc-events-bench").get("KeyCount", 0)
        print(f"objects left in the bucket: {left}")
        plain.close()
        checked.close()
    finally:
        moto.terminate()
        moto.wait(timeout=10)


if __name__ == "__main__":
    main()
