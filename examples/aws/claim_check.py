"""Claim-check round trip: a 10 MB payload goes through S3, the transport carries a reference.

    python examples/aws/claim_check.py                      # memory backend, local moto S3
    python examples/aws/claim_check.py --backend rabbitmq   # through RabbitMQ (worker in-process)

With ``AWS_S3_ENDPOINT_URL`` (and credentials) set, it uses that S3 endpoint and ``--bucket``;
otherwise it starts moto in server mode on 127.0.0.1 for the run (``pip install "moto[server]"``).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import zc_events
from zc_events import Envelope, EventClient, Middleware, Request
from zc_events_aws import S3ClaimCheck, s3_client


class WireSize(Middleware):
    """Runs after the claim check: records what the transport is handed."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def outgoing_request(self, envelope: Envelope) -> Envelope:
        self.sizes.append(len(envelope.encode()))
        return envelope


@contextmanager
def local_s3() -> Iterator[None]:
    """Point the AWS settings at a moto server started for this run, unless one is configured."""
    if os.environ.get("AWS_S3_ENDPOINT_URL"):
        yield
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None:
                    sys.exit('moto did not start: pip install "moto[server]"')
                time.sleep(0.1)
        os.environ.update(
            AWS_S3_ENDPOINT_URL=f"http://127.0.0.1:{port}",
            AWS_ACCESS_KEY_ID="example",
            AWS_SECRET_ACCESS_KEY="example",
            AWS_REGION="us-east-1",
        )
        print(f"started moto S3 on 127.0.0.1:{port} (pid {proc.pid})")
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def delete_rabbitmq_objects(name: str) -> None:
    """Delete the exchange and queues this run declared (named ``name``)."""
    import pika

    url = zc_events.get_settings().broker_url({})
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    for queue in (name, f"{name}.dead"):
        channel.queue_delete(queue)
    for exchange in (name, f"{name}.dead"):
        channel.exchange_delete(exchange)
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="memory", help="memory (default) or rabbitmq")
    parser.add_argument("--bucket", help="an existing bucket (default: create one for the run)")
    parser.add_argument("--megabytes", type=float, default=10.0)
    args = parser.parse_args()

    with local_s3():
        s3 = s3_client()
        bucket = args.bucket or f"zc-events-example-{uuid.uuid4().hex[:8]}"
        if not args.bucket:
            s3.create_bucket(Bucket=bucket)
        name = f"claim-check-example-{uuid.uuid4().hex[:8]}"
        zc_events.configure(
            backend=args.backend,
            service_name=name,
            # rabbitmq: an exchange and queue of our own, deleted at the end
            backend_options={"exchange": name} if args.backend == "rabbitmq" else {},
            middleware=["s3_claim_check"],
            middleware_options={"s3_claim_check": {"bucket": bucket}},
        )
        settings = zc_events.get_settings()

        @zc_events.handler("example.reverse")
        def reverse(request: Request) -> dict[str, str]:
            return {"blob": request.data["blob"][::-1]}

        server = None
        wire = WireSize()
        client = EventClient(settings=settings, middleware=[S3ClaimCheck(bucket=bucket), wire])
        try:
            if args.backend != "memory":  # serve in this process, on the real transport
                server = zc_events.create_backend(args.backend, settings)
                threading.Thread(
                    target=server.serve, args=(server.default_dispatcher(),), daemon=True
                ).start()
                for _ in range(100):  # until the worker has bound its queue
                    try:
                        client.get("example.reverse", data={"blob": ""}, timeout=2)
                        break
                    except (zc_events.NoRouteError, zc_events.RequestTimeout):
                        time.sleep(0.1)
            blob = "z" * int(args.megabytes * 1024 * 1024)
            started = time.perf_counter()
            response = client.post("example.reverse", data={"blob": blob}, timeout=120)
            elapsed = time.perf_counter() - started
            response.raise_for_errors()
            assert response.data["blob"] == blob[::-1]
            left = s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0)
            print(
                f"{len(blob) / 1e6:.1f} MB round trip over {args.backend!r} in {elapsed:.2f} s; "
                f"the transport carried a {wire.sizes[-1]} byte request; "
                f"claim-check objects left in s3://{bucket}: {left}"
            )
        finally:
            client.close()
            if server is not None:
                server.stop()
                server.close()
                delete_rabbitmq_objects(name)
            zc_events.reset()
            if not args.bucket:
                s3.delete_bucket(Bucket=bucket)


if __name__ == "__main__":
    main()
