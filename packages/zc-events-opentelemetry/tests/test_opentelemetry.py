"""The opentelemetry middleware in-process (memory backend) and across real worker processes
(RabbitMQ, both wires): one trace id, parent/child, kinds, attributes, errors, metrics."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from zc_events import (
    Dispatcher,
    EventClient,
    HandlerRegistry,
    NoRouteError,
    RequestTimeout,
    Settings,
)
from zc_events.backends.memory import MemoryBackend
from zc_events.testing import run_worker
from zc_events_opentelemetry import OpenTelemetryMiddleware

HERE = Path(__file__).resolve().parent
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
REDIS_URL = "redis://127.0.0.1:6379/0"


class Telemetry:
    """An SDK tracer provider with an in-memory exporter, and a meter with a reader."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def middleware(self) -> OpenTelemetryMiddleware:
        return OpenTelemetryMiddleware(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        out = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        out.extend(metric.data.data_points)
        return out


@pytest.fixture
def telemetry() -> Telemetry:
    return Telemetry()


# -- in-process ----------------------------------------------------------------------------------
def test_entry_point_builds_the_middleware() -> None:
    with EventClient("memory", middleware=["opentelemetry"]) as client:
        (mw,) = client.middleware
    assert isinstance(mw, OpenTelemetryMiddleware)
    assert mw.system == "memory"


def test_memory_client_and_server_spans_share_a_trace(telemetry: Telemetry) -> None:
    registry = HandlerRegistry()
    registry.register("otel.echo", lambda request: request.data)

    def fail(request: Any) -> None:
        raise KeyError("missing")

    registry.register("otel.fail", fail)
    server_mw = telemetry.middleware()
    backend = MemoryBackend(dispatcher=Dispatcher([registry], [server_mw]))
    with EventClient(backend, middleware=[telemetry.middleware()]) as client:
        assert client.get("otel.echo", data=1).data == 1
        assert client.post("otel.fail").has_errors
        client.post_no_wait("otel.echo", data=2)
        backend.join(10)
        with pytest.raises(NoRouteError):
            client.get("otel.nobody")
    spans = {(s.name, s.kind): s for s in telemetry.spans()}
    send = spans["send otel.echo", SpanKind.CLIENT]
    process = spans["process otel.echo", SpanKind.SERVER]
    assert process.context.trace_id == send.context.trace_id
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert send.attributes["messaging.system"] == "memory"
    assert send.attributes["messaging.destination.name"] == "otel.echo"
    assert send.attributes["zc_events.method"] == "GET"
    assert spans["send otel.echo", SpanKind.PRODUCER]
    assert spans["process otel.echo", SpanKind.CONSUMER]
    failed = spans["send otel.fail", SpanKind.CLIENT]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "KeyError"
    assert spans["process otel.fail", SpanKind.SERVER].status.status_code is StatusCode.ERROR
    nobody = spans["send otel.nobody", SpanKind.CLIENT]
    assert nobody.attributes["error.type"] == "NoRouteError"
    errors = {
        (
            p.attributes["messaging.destination.name"],
            p.attributes["zc_events.outcome"],
            p.attributes["zc_events.side"],
            p.attributes["messaging.system"],
        ): p.value
        for p in telemetry.points("zc_events.errors")
    }
    assert errors == {
        ("otel.fail", "KeyError", "client", "memory"): 1,
        ("otel.fail", "KeyError", "server", "memory"): 1,
        ("otel.nobody", "NoRouteError", "client", "memory"): 1,
    }
    durations = telemetry.points("messaging.client.operation.duration")
    assert {p.attributes["zc_events.outcome"] for p in durations} == {
        "ok",
        "KeyError",
        "NoRouteError",
    }
    assert telemetry.points("messaging.process.duration")


def test_timeout_ends_the_client_span_with_the_error(telemetry: Telemetry) -> None:
    registry = HandlerRegistry()
    registry.register("otel.slow", lambda request: time.sleep(0.5))
    backend = MemoryBackend(dispatcher=Dispatcher([registry]))
    with (
        EventClient(backend, middleware=[telemetry.middleware()]) as client,
        pytest.raises(RequestTimeout),
    ):
        client.get("otel.slow", timeout=0.05)
    (span,) = telemetry.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "RequestTimeout"


def test_without_an_sdk_nothing_is_added_to_the_headers() -> None:
    registry = HandlerRegistry()
    registry.register("otel.headers", lambda request: dict(request.headers))
    backend = MemoryBackend(dispatcher=Dispatcher([registry], [OpenTelemetryMiddleware()]))
    with EventClient(backend, middleware=[OpenTelemetryMiddleware()]) as client:
        assert client.get("otel.headers").data == {}


def test_trace_context_headers_are_what_the_propagator_writes_and_reads(
    telemetry: Telemetry,
) -> None:
    """The middleware writes and reads ``traceparent`` itself for the default propagator when
    that is all there is to carry: the same headers and parent as the propagator's own, and the
    propagator's path whenever baggage or a tracestate travels, or another propagator is set."""
    from opentelemetry import baggage, context, propagate, trace
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    def seen(request: Any) -> dict[str, Any]:
        current = trace.get_current_span().get_span_context()
        return {
            "headers": dict(request.headers),
            "trace_state": current.trace_state.to_header(),
            "baggage": dict(baggage.get_all()),
        }

    def expected_headers(span: ReadableSpan) -> dict[str, str]:
        carrier: dict[str, str] = {}
        propagate.inject(carrier, trace.set_span_in_context(NonRecordingSpan(span.context)))
        return carrier

    def call(client: EventClient) -> tuple[dict[str, Any], ReadableSpan, ReadableSpan]:
        telemetry.exporter.clear()
        answer = client.get("otel.seen").data
        spans = {s.kind: s for s in telemetry.spans()}
        send, process = spans[SpanKind.CLIENT], spans[SpanKind.SERVER]
        assert process.context.trace_id == send.context.trace_id
        assert process.parent is not None and process.parent.span_id == send.context.span_id
        return answer, send, process

    registry = HandlerRegistry()
    registry.register("otel.seen", seen)
    backend = MemoryBackend(dispatcher=Dispatcher([registry], [telemetry.middleware()]))
    with EventClient(backend, middleware=[telemetry.middleware()]) as client:
        # Only a span: traceparent alone, exactly as the propagator writes it.
        answer, send, _ = call(client)
        assert answer == {"headers": expected_headers(send), "trace_state": "", "baggage": {}}
        assert list(answer["headers"]) == ["traceparent"]

        # Baggage in the caller's context travels too, and the handler sees it.
        token = context.attach(baggage.set_baggage("tenant", "t-1"))
        try:
            answer, send, _ = call(client)
        finally:
            context.detach(token)
        assert answer["headers"] == expected_headers(send) | {"baggage": "tenant=t-1"}
        assert answer["baggage"] == {"tenant": "t-1"}

        # A tracestate (inherited from a remote parent) travels and reaches the server span.
        remote = SpanContext(
            0x1234,
            0x5678,
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
            trace_state=TraceState([("vendor", "v1")]),
        )
        token = context.attach(trace.set_span_in_context(NonRecordingSpan(remote)))
        try:
            answer, send, process = call(client)
        finally:
            context.detach(token)
        assert send.context.trace_id == 0x1234
        assert answer["headers"]["tracestate"] == "vendor=v1"
        assert answer["headers"] == expected_headers(send)
        assert answer["trace_state"] == "vendor=v1"
        assert process.context.trace_state.to_header() == "vendor=v1"

    # Another propagator (here: baggage first) goes through the propagator itself.
    other = CompositePropagator([W3CBaggagePropagator(), TraceContextTextMapPropagator()])
    options = {
        "tracer_provider": telemetry.tracer_provider,
        "meter_provider": telemetry.meter_provider,
        "propagator": other,
    }
    backend = MemoryBackend(dispatcher=Dispatcher([registry], [OpenTelemetryMiddleware(**options)]))
    with EventClient(backend, middleware=[OpenTelemetryMiddleware(**options)]) as client:
        token = context.attach(baggage.set_baggage("tenant", "t-2"))
        try:
            answer, send, _ = call(client)
        finally:
            context.detach(token)
        carrier: dict[str, str] = {}
        caller = baggage.set_baggage("tenant", "t-2")
        other.inject(carrier, trace.set_span_in_context(NonRecordingSpan(send.context), caller))
        assert set(carrier) == {"traceparent", "baggage"}
        assert answer["headers"] == carrier
        assert answer["baggage"] == {"tenant": "t-2"}


# -- across real worker processes ----------------------------------------------------------------
def read_spans(path: Path, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return [json.loads(line) for line in lines]
        time.sleep(0.05)


def hexid(value: int) -> str:
    return f"0x{value:032x}" if value > 2**64 else f"0x{value:016x}"


@pytest.fixture
def names() -> Iterator[dict[str, str]]:
    suffix = uuid.uuid4().hex[:10]
    out = {
        "service": f"zc-events-test-otel-{suffix}",
        "exchange": f"zc-events-test-otel-ex-{suffix}",
        "events_exchange": f"zc-events-test-otel-fanout-{suffix}",
    }
    yield out
    from zc_events_rabbitmq.testing import delete_broker_objects

    service = out["service"]
    delete_broker_objects(
        # the client's SERVICE_NAME is <service>-client: the legacy backend declares its queue too
        [service, f"{service}.dead", f"{service}-events", f"{service}-client-events"],
        [out["exchange"], f"{out['exchange']}.dead", out["events_exchange"]],
    )


@pytest.mark.rabbitmq
@pytest.mark.parametrize("backend", ["rabbitmq", "rabbitmq_legacy"])
def test_one_trace_across_client_and_worker_processes(
    backend: str, names: dict[str, str], telemetry: Telemetry, tmp_path: Path
) -> None:
    if backend == "rabbitmq":
        options: dict[str, Any] = {"exchange": names["exchange"], "url": AMQP_URL}
    else:
        options = {
            "events_exchange": names["events_exchange"],
            "redis_url": REDIS_URL,
            "url": AMQP_URL,
        }
    spans_file = tmp_path / "worker-spans.jsonl"
    env = {
        "SERVICE_NAME": names["service"],
        "ZC_EVENTS_BACKEND": backend,
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps(options),
        "ZC_EVENTS_MIDDLEWARE": '["opentelemetry"]',
        "OTEL_TEST_SPANS": str(spans_file),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    settings = Settings({"SERVICE_NAME": f"{names['service']}-client"})
    with (
        run_worker(["otel_worker"], env=env),
        EventClient(
            backend, settings=settings, middleware=[telemetry.middleware()], **options
        ) as client,
    ):
        deadline = time.monotonic() + 30
        while True:  # the legacy fanout has no routing check: wait until the worker answers
            try:
                assert client.get("otel.echo", data="hi", timeout=2).data == "hi"
                break
            except RequestTimeout:
                if time.monotonic() > deadline:
                    raise
        telemetry.exporter.clear()
        spans_file.unlink(missing_ok=True)

        assert client.get("otel.nested", data=42, timeout=20).data == 42
        worker_spans = read_spans(spans_file, 3)
        (send,) = telemetry.spans()
        assert send.kind is SpanKind.CLIENT
        trace_id = hexid(send.context.trace_id)
        assert {s["context"]["trace_id"] for s in worker_spans} == {trace_id}
        by_name = {s["name"]: s for s in worker_spans}
        outer = by_name["process otel.nested"]
        inner_send = by_name["send otel.echo"]
        inner = by_name["process otel.echo"]
        assert outer["parent_id"] == hexid(send.context.span_id)
        assert outer["kind"] == "SpanKind.SERVER"
        assert inner_send["parent_id"] == outer["context"]["span_id"]
        assert inner_send["kind"] == "SpanKind.CLIENT"
        assert inner["parent_id"] == inner_send["context"]["span_id"]
        attributes = outer["attributes"]
        assert attributes["messaging.system"] == backend
        assert attributes["messaging.operation.type"] == "process"
        assert attributes["messaging.destination.name"] == "otel.nested"
        assert attributes["messaging.message.id"] == send.attributes["messaging.message.id"]
        assert attributes["zc_events.method"] == "GET"
        assert inner["attributes"]["zc_events.caused_by"] == attributes["messaging.message.id"]

        # A failing handler: ERROR on both sides, with the remote error type.
        telemetry.exporter.clear()
        spans_file.unlink()
        assert client.post("otel.fail", timeout=20).has_errors
        (failed,) = telemetry.spans()
        assert failed.status.status_code is StatusCode.ERROR
        assert failed.attributes["error.type"] == "ValueError"
        (served,) = read_spans(spans_file, 1)
        assert served["status"]["status_code"] == "ERROR"
        assert served["attributes"]["error.type"] == "ValueError"
        assert served["context"]["trace_id"] == hexid(failed.context.trace_id)

        # Fire and forget: PRODUCER, then a CONSUMER child in the worker.
        telemetry.exporter.clear()
        spans_file.unlink()
        client.post_no_wait("otel.echo", data=1)
        (produced,) = telemetry.spans()
        assert produced.kind is SpanKind.PRODUCER
        (consumed,) = read_spans(spans_file, 1)
        assert consumed["kind"] == "SpanKind.CONSUMER"
        assert consumed["parent_id"] == hexid(produced.context.span_id)

    errors = telemetry.points("zc_events.errors")
    assert [(p.attributes["zc_events.outcome"], p.value) for p in errors] == [("ValueError", 1)]
    assert errors[0].attributes["messaging.system"] == backend
    assert errors[0].attributes["zc_events.method"] == "POST"


# -- asyncio -------------------------------------------------------------------------------------
async def test_async_client_and_async_handlers_share_one_trace(telemetry: Telemetry) -> None:
    from zc_events import AsyncEventClient
    from zc_events.backends.memory import AsyncMemoryBackend

    registry = HandlerRegistry()
    client_box: list[AsyncEventClient] = []

    async def inner(request: Any) -> Any:
        return request.data

    async def outer(request: Any) -> Any:
        return (await client_box[0].get("otel.ainner", data=request.data)).data

    registry.register("otel.ainner", inner)
    registry.register("otel.aouter", outer)
    backend = AsyncMemoryBackend(dispatcher=Dispatcher([registry], [telemetry.middleware()]))
    async with AsyncEventClient(backend, middleware=[telemetry.middleware()]) as client:
        client_box.append(client)
        assert (await client.get("otel.aouter", data=5)).data == 5
        with pytest.raises(NoRouteError):
            await client.get("otel.anobody")
        await client.post_no_wait("otel.ainner", data=1)
        await backend.join(10)
    spans = {(s.name, s.kind): s for s in telemetry.spans()}
    send = spans["send otel.aouter", SpanKind.CLIENT]
    outer_span = spans["process otel.aouter", SpanKind.SERVER]
    nested = spans["send otel.ainner", SpanKind.CLIENT]
    inner_span = spans["process otel.ainner", SpanKind.SERVER]
    assert {s.context.trace_id for s in (send, outer_span, nested, inner_span)} == {
        send.context.trace_id
    }
    assert outer_span.parent.span_id == send.context.span_id  # type: ignore[union-attr]
    assert nested.parent.span_id == outer_span.context.span_id  # type: ignore[union-attr]
    assert inner_span.parent.span_id == nested.context.span_id  # type: ignore[union-attr]
    assert nested.attributes["zc_events.caused_by"] == outer_span.attributes["messaging.message.id"]
    assert spans["send otel.anobody", SpanKind.CLIENT].attributes["error.type"] == "NoRouteError"
    assert spans["send otel.ainner", SpanKind.PRODUCER]
    assert spans["process otel.ainner", SpanKind.CONSUMER]


@pytest.mark.rabbitmq
async def test_async_client_and_an_async_handler_in_a_worker_process(
    names: dict[str, str], telemetry: Telemetry, tmp_path: Path
) -> None:
    from zc_events import AsyncEventClient

    options: dict[str, Any] = {"exchange": names["exchange"], "url": AMQP_URL}
    spans_file = tmp_path / "worker-spans.jsonl"
    env = {
        "SERVICE_NAME": names["service"],
        "ZC_EVENTS_BACKEND": "rabbitmq",
        "ZC_EVENTS_BACKEND_OPTIONS": json.dumps(options),
        "ZC_EVENTS_MIDDLEWARE": '["opentelemetry"]',
        "OTEL_TEST_SPANS": str(spans_file),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    settings = Settings({"SERVICE_NAME": f"{names['service']}-client"})
    with run_worker(["otel_worker"], env=env):
        async with AsyncEventClient(
            "rabbitmq", settings=settings, middleware=[telemetry.middleware()], **options
        ) as client:
            assert (await client.get("otel.anested", data=7, timeout=30)).data == 7
    (send,) = telemetry.spans()
    assert send.kind is SpanKind.CLIENT
    assert send.attributes["messaging.system"] == "rabbitmq"
    worker_spans = {s["name"]: s for s in read_spans(spans_file, 3)}
    outer = worker_spans["process otel.anested"]
    nested = worker_spans["send otel.echo"]
    inner = worker_spans["process otel.echo"]
    assert {s["context"]["trace_id"] for s in worker_spans.values()} == {
        hexid(send.context.trace_id)
    }
    assert outer["parent_id"] == hexid(send.context.span_id)
    assert nested["parent_id"] == outer["context"]["span_id"]
    assert inner["parent_id"] == nested["context"]["span_id"]
