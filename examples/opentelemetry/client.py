"""Call the traced inventory service:

ZC_EVENTS_BACKEND=rabbitmq ZC_EVENTS_MIDDLEWARE='["opentelemetry"]' python client.py
"""

import telemetry  # noqa: F401  (configures the SDK)
from opentelemetry import trace

import zc_events

tracer = trace.get_tracer("example")
with tracer.start_as_current_span("checkout") as span:
    response = zc_events.get("inventory.reserve", data={"sku": "tea"})
    trace_id = format(span.get_span_context().trace_id, "032x")
print(f"reserve -> {response.data}", flush=True)
print(f"trace id {trace_id}", flush=True)
