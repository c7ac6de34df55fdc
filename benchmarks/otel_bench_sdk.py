"""Imported by the ``sdk`` worker of benchmarks/otel.py: the OpenTelemetry SDK with every span
sampled and dropped by a no-op exporter, and a meter provider with a reader."""

from __future__ import annotations

from opentelemetry import metrics, trace
from otel import sdk_providers

tracer_provider, meter_provider = sdk_providers()
trace.set_tracer_provider(tracer_provider)
metrics.set_meter_provider(meter_provider)
