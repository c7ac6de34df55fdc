"""The ``opentelemetry`` middleware's overhead on a native RabbitMQ ``get``, against the same
call without it, in one run.

    python benchmarks/otel.py [--calls 1000] [--rounds 5] [--hook-calls 50000]

Needs RabbitMQ on 127.0.0.1:5672 (``hatch run bench:otel``). Every exchange and queue it creates
has a unique name and is deleted at the end.

Three services, each served by its own ``zc-events worker`` process, and a client for each:

- ``baseline``: no middleware;
- ``api only``: the ``opentelemetry`` middleware on both sides, no SDK configured (what an
  application gets when it installs the package but not the SDK: everything is a no-op);
- ``sdk``: the middleware with the OpenTelemetry SDK on both sides, every span sampled and
  handed to a ``BatchSpanProcessor`` (what production uses) whose exporter drops it, and a meter
  provider with a reader.

The contenders run interleaved in blocks of ``--calls`` sequential ``get``s, ``--rounds`` times,
so load from other processes hits them alike. Printed: p50 and mean latency, and the ratio of
each to the baseline (target: sdk ≤ 1.10).

A round trip varies by tens of microseconds, so the in-process cost of the four hooks (client
``outgoing_request`` + ``request_finished``, server ``incoming_request`` +
``outgoing_response``) is measured apart, the fastest of 7 runs of ``--hook-calls`` calls, in µs
per call (target: ≤ 5 µs with the API only). Next to the ``sdk`` figure: the SDK's own cost of
the same two spans, trace context and two histogram records, made directly with the SDK (what
any instrumentation of a call has to pay; the middleware cannot be cheaper than that).

In-process figures are for warm caches. Between the hooks of a real call the process waits on
the network and the CPU runs other code, so each hook runs with cold caches and costs several
times its in-process figure: the round-trip ratio is what counts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")

#: Imported by the ``sdk`` worker before the handlers: configures the SDK with a no-op exporter.
SDK_SETUP = "otel_bench_sdk"


def sdk_providers() -> tuple[Any, Any]:
    """A tracer provider that samples everything into a dropping exporter, and a meter provider."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class DropExporter(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    # A queue large enough that no span is dropped (dropping would flatter the numbers).
    tracer_provider.add_span_processor(BatchSpanProcessor(DropExporter(), max_queue_size=2**18))
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()])


def hook_cost(middleware: Any, calls: int, repeats: int = 7) -> float:
    """µs per call of the four hooks on one client and one server middleware: the fastest of
    ``repeats`` runs of ``calls`` (the least disturbed by other processes), less the same loop
    without the hooks."""
    from zc_events import Envelope, Response

    client, server = middleware
    response = Response({"answer": 2})

    def with_hooks() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            envelope = Envelope.create("bench.key", "GET", timeout=30, reply_to="x")
            envelope = client.outgoing_request(envelope)
            served = server.incoming_request(Envelope.from_dict(envelope.to_dict()))
            server.outgoing_response(served, response)
            client.request_finished(envelope, response, None)
        return time.perf_counter() - start

    return _extra_per_call(with_hooks, calls, repeats)


def sdk_floor(tracer_provider: Any, meter_provider: Any, calls: int, repeats: int = 7) -> float:
    """µs per call of what the middleware does with the SDK, done directly with it: a client
    and a server span with the same attributes, the traceparent written and parsed, the server
    span current while the handler would run, both ended, and one histogram record per side;
    measured like :func:`hook_cost`."""
    from opentelemetry import context, trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

    from zc_events import Envelope

    tracer = tracer_provider.get_tracer("bench")
    meter = meter_provider.get_meter("bench")
    client_duration = meter.create_histogram("bench.client", unit="s")
    process_duration = meter.create_histogram("bench.process", unit="s")

    def attributes(envelope: Envelope, operation: str) -> dict[str, str]:
        return {
            "messaging.system": "rabbitmq",
            "messaging.operation.type": operation,
            "messaging.destination.name": envelope.key,
            "messaging.message.id": envelope.id,
            "zc_events.method": envelope.method,
        }

    def labels(envelope: Envelope, side: str) -> dict[str, str]:
        return {
            "messaging.destination.name": envelope.key,
            "zc_events.method": envelope.method,
            "messaging.system": "rabbitmq",
            "zc_events.outcome": "ok",
            "zc_events.side": side,
        }

    def direct() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            envelope = Envelope.create("bench.key", "GET", timeout=30, reply_to="x")
            span = tracer.start_span("send bench.key", kind=SpanKind.CLIENT)
            span.set_attributes(attributes(envelope, "send"))
            sc = span.get_span_context()
            envelope.headers = {"traceparent": f"00-{sc.trace_id:032x}-{sc.span_id:016x}-01"}
            served = Envelope.from_dict(envelope.to_dict())
            value = served.headers["traceparent"]
            remote = SpanContext(
                int(value[3:35], 16), int(value[36:52], 16), True, TraceFlags(int(value[53:], 16))
            )
            parent = trace.set_span_in_context(NonRecordingSpan(remote), context.Context())
            server = tracer.start_span("process bench.key", parent, kind=SpanKind.SERVER)
            server.set_attributes(attributes(served, "process"))
            token = context.attach(trace.set_span_in_context(server, parent))
            context.detach(token)
            server.end()
            process_duration.record(0.001, labels(served, "server"))
            span.end()
            client_duration.record(0.002, labels(envelope, "client"))
        return time.perf_counter() - start

    return _extra_per_call(direct, calls, repeats)


def _extra_per_call(loop: Callable[[], float], calls: int, repeats: int) -> float:
    """µs per call that ``loop`` (``calls`` envelopes through hooks or spans, timed) costs
    beyond building and decoding the envelopes alone: the fastest of ``repeats`` runs of each."""
    from zc_events import Envelope

    def without() -> float:
        start = time.perf_counter()
        for _ in range(calls):
            envelope = Envelope.create("bench.key", "GET", timeout=30, reply_to="x")
            Envelope.from_dict(envelope.to_dict())
        return time.perf_counter() - start

    best = min(loop() for _ in range(repeats))
    best_without = min(without() for _ in range(repeats))
    return (best - best_without) / calls * 1e6


def measure(call: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="gets per block (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="blocks per contender (default 5)")
    parser.add_argument("--hook-calls", type=int, default=20_000, help="in-process hook calls")
    args = parser.parse_args()

    from zc_events import EventClient, Settings
    from zc_events.testing import run_worker
    from zc_events_opentelemetry import OpenTelemetryMiddleware
    from zc_events_rabbitmq.testing import delete_broker_objects

    tracer_provider, meter_provider = sdk_providers()
    api_pair = (OpenTelemetryMiddleware(), OpenTelemetryMiddleware())
    sdk_pair = tuple(
        OpenTelemetryMiddleware(tracer_provider=tracer_provider, meter_provider=meter_provider)
        for _ in range(2)
    )
    for mw in (*api_pair, *sdk_pair):
        mw.bind("rabbitmq")
    hook_api = hook_cost(api_pair, args.hook_calls)
    hook_sdk = hook_cost(sdk_pair, max(1, args.hook_calls // 10))
    floor_sdk = sdk_floor(tracer_provider, meter_provider, max(1, args.hook_calls // 10))

    suffix = uuid.uuid4().hex[:10]
    contenders: dict[str, dict[str, Any]] = {
        "baseline": {"middleware": [], "modules": []},
        "api only": {"middleware": ["opentelemetry"], "modules": []},
        "sdk": {"middleware": ["opentelemetry"], "modules": [SDK_SETUP]},
    }
    queues: list[str] = []
    exchanges: list[str] = []
    clients: dict[str, EventClient] = {}
    with ExitStack() as stack:
        try:
            for i, (name, spec) in enumerate(contenders.items()):
                service = f"zc-events-bench-otel-{i}-{suffix}"
                exchange = f"zc-events-bench-otel-ex-{i}-{suffix}"
                queues += [service, f"{service}.dead"]
                exchanges += [exchange, f"{exchange}.dead"]
                env = {
                    "SERVICE_NAME": service,
                    "ZC_EVENTS_BACKEND": "rabbitmq",
                    "ZC_EVENTS_BACKEND_OPTIONS": json.dumps(
                        {"exchange": exchange, "url": AMQP_URL, "concurrency": 1}
                    ),
                    "ZC_EVENTS_MIDDLEWARE": json.dumps(spec["middleware"]),
                    "ZC_EVENTS_LOG_MESSAGES": "false",
                    "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
                }
                stack.enter_context(
                    run_worker([*spec["modules"], "zc_events.testing.handlers"], env=env)
                )
                middleware: list[Any] = []
                if name == "api only":
                    middleware = [OpenTelemetryMiddleware()]
                elif name == "sdk":
                    middleware = [
                        OpenTelemetryMiddleware(
                            tracer_provider=tracer_provider, meter_provider=meter_provider
                        )
                    ]
                client = EventClient(
                    "rabbitmq",
                    settings=Settings({"SERVICE_NAME": f"{service}-client"}),
                    middleware=middleware,
                    exchange=exchange,
                    url=AMQP_URL,
                )
                stack.callback(client.close)
                clients[name] = client
            samples: dict[str, list[float]] = {name: [] for name in clients}
            for client in clients.values():  # warm up: connections, the bindings in place
                deadline = time.monotonic() + 30
                while True:
                    try:
                        client.get("conformance.add", data={"x": 1, "y": 1}, timeout=5)
                        break
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                measure(lambda c=client: c.get("conformance.add", data={"x": 1, "y": 1}), 200)
            for _ in range(args.rounds):
                for name, client in clients.items():
                    samples[name] += measure(
                        lambda c=client: c.get("conformance.add", data={"x": 1, "y": 1}),
                        args.calls,
                    )
        finally:
            stack.close()
            delete_broker_objects(queues, exchanges, url=AMQP_URL)

    print(
        f"opentelemetry middleware overhead on a native rabbitmq get "
        f"({args.rounds} x {args.calls} calls each, interleaved; {os.cpu_count()} cpus, "
        f"load average {os.getloadavg()[0]:.2f})"
    )
    base = samples["baseline"]
    base_p50, base_mean = statistics.median(base), statistics.fmean(base)
    print(f"{'':10} {'p50 µs':>9} {'mean µs':>9} {'p50 ratio':>10} {'mean ratio':>11}")
    for name, values in samples.items():
        p50, mean = statistics.median(values), statistics.fmean(values)
        print(
            f"{name:10} {p50 * 1e6:9.0f} {mean * 1e6:9.0f} {p50 / base_p50:10.3f} "
            f"{mean / base_mean:11.3f}"
        )
    print(
        f"in-process cost of the four hooks per call: api only {hook_api:.2f} µs "
        f"(target ≤ 5 µs), sdk {hook_sdk:.2f} µs (the SDK's own cost of the same spans and "
        f"metrics: {floor_sdk:.2f} µs)"
    )


if __name__ == "__main__":
    sys.exit(main())
