"""The OpenTelemetry SDK for the example: every span printed as one JSON line on stdout.

In production, use BatchSpanProcessor with an OTLP exporter instead (docs/observability.md).
"""

import json
import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor


def one_line(span):
    return json.dumps(json.loads(span.to_json())) + "\n"


provider = TracerProvider(
    resource=Resource.create({"service.name": os.environ.get("SERVICE_NAME", "client")})
)
provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=one_line)))
trace.set_tracer_provider(provider)
