"""Handlers for the worker processes of the tests, with the OpenTelemetry SDK exporting every
finished span as one JSON line to the file ``OTEL_TEST_SPANS`` names."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import zc_events
from zc_events import Request


class FileExporter(SpanExporter):
    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self.path, "a", encoding="utf-8") as f:
            for span in spans:
                f.write(json.dumps(json.loads(span.to_json())) + "\n")
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(FileExporter(os.environ["OTEL_TEST_SPANS"])))
trace.set_tracer_provider(provider)


@zc_events.handler("otel.echo")
def echo(request: Request) -> object:
    return request.data


@zc_events.handler("otel.fail")
def fail(request: Request) -> None:
    raise ValueError("no good")


@zc_events.handler("otel.nested")
def nested(request: Request) -> object:
    return zc_events.get("otel.echo", data=request.data).data


_async_client: list[zc_events.AsyncEventClient] = []


@zc_events.handler("otel.anested")
async def anested(request: Request) -> object:
    """An async handler calling another service with the async client."""
    if not _async_client:
        _async_client.append(zc_events.AsyncEventClient())
    return (await _async_client[0].get("otel.echo", data=request.data)).data
