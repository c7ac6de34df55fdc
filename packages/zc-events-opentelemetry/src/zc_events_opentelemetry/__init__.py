"""OpenTelemetry traces and metrics for zc-events.

Enable it with ``ZC_EVENTS_MIDDLEWARE = ["opentelemetry"]`` on clients and workers, and
configure the OpenTelemetry SDK (a tracer provider with an exporter) in each process::

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
"""

from ._middleware import (
    CLIENT_DURATION,
    ERRORS,
    PROCESS_DURATION,
    SCHEMA_URL,
    OpenTelemetryMiddleware,
)
from ._version import __version__

__all__ = [
    "CLIENT_DURATION",
    "ERRORS",
    "PROCESS_DURATION",
    "SCHEMA_URL",
    "OpenTelemetryMiddleware",
    "__version__",
]
