"""The ``opentelemetry`` middleware: spans, W3C trace context in the envelope headers, metrics."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from opentelemetry import baggage, context, metrics, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import Getter, TextMapPropagator
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from zc_events import Envelope, Middleware, Response, Settings, get_settings

from ._version import __version__

__all__ = ["OpenTelemetryMiddleware"]

#: The semantic conventions the attribute names follow.
SCHEMA_URL = "https://opentelemetry.io/schemas/1.27.0"

# Attribute names (OpenTelemetry messaging semantic conventions, plus zc_events.*).
SYSTEM = "messaging.system"
OPERATION_TYPE = "messaging.operation.type"
DESTINATION = "messaging.destination.name"
MESSAGE_ID = "messaging.message.id"
CONVERSATION_ID = "messaging.message.conversation_id"
BODY_SIZE = "messaging.message.body.size"
METHOD = "zc_events.method"
OUTCOME = "zc_events.outcome"
CAUSED_BY = "zc_events.caused_by"
SIDE = "zc_events.side"
ERROR_TYPE = "error.type"

#: Client spans kept for calls whose end was not reported yet; the oldest is ended beyond this.
MAX_CALLS_IN_FLIGHT = 10_000

#: Metric names.
CLIENT_DURATION = "messaging.client.operation.duration"
PROCESS_DURATION = "messaging.process.duration"
ERRORS = "zc_events.errors"


class _HeadersGetter(Getter[Mapping[str, Any]]):
    """Reads W3C trace context from envelope headers (values may be any JSON)."""

    def get(self, carrier: Mapping[str, Any], key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Mapping[str, Any]) -> list[str]:
        return list(carrier)


_getter = _HeadersGetter()

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
BAGGAGE = "baggage"

#: A version 00 ``traceparent`` exactly as :class:`TraceContextTextMapPropagator` writes it.
_CANONICAL_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE_ID = "0" * 32
_ZERO_SPAN_ID = "0" * 16

# How a propagator is handled: by calling it, or (the W3C trace context propagator, alone or
# followed by the W3C baggage one: the default) by reading and writing ``traceparent``
# directly whenever that is all there is to carry, which is the same outcome for a fraction of
# the work on the critical path of every call.
_GENERIC, _W3C, _W3C_BAGGAGE = 0, 1, 2


def _kind_of(propagator: TextMapPropagator) -> int:
    kind = type(propagator)
    if kind is TraceContextTextMapPropagator:
        return _W3C
    if kind is CompositePropagator:
        # Only read to recognise the default composite; anything else takes the generic path.
        parts = getattr(propagator, "_propagators", None)
        if isinstance(parts, list | tuple) and [type(p) for p in parts] == [
            TraceContextTextMapPropagator,
            W3CBaggagePropagator,
        ]:
            return _W3C_BAGGAGE
    return _GENERIC


#: The server span of the message being handled in this context, its context token, its start.
_serving: ContextVar[tuple[Span, object, float] | None] = ContextVar(
    "zc_events_opentelemetry_serving", default=None
)


def _error_type(response: Response) -> str:
    errors = response.errors
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    kind = first.get("type")
    return kind if isinstance(kind, str) and kind else "RemoteError"


def _error_message(response: Response) -> str:
    errors = response.errors
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    message = first.get("message") or first.get("detail") or ""
    return str(message)[:200]


class OpenTelemetryMiddleware(Middleware):
    """Traces and measures every call (client side) and every handled message (server side).

    Client: a span per call — kind CLIENT for the waiting verbs, PRODUCER for ``*_no_wait`` —
    whose W3C ``traceparent``/``tracestate`` go into the envelope headers. Server: a span per
    handled message — SERVER for a request, CONSUMER for a ``*_no_wait`` message — that is the
    child of the caller's span, and current while the handler runs (calls it makes are its
    children). Metrics: ``messaging.client.operation.duration`` and
    ``messaging.process.duration`` (seconds) and the ``zc_events.errors`` counter, with the
    attributes ``messaging.destination.name`` (the key), ``zc_events.method``,
    ``messaging.system`` (the backend), ``zc_events.outcome`` (``ok`` or the error type) and
    ``zc_events.side`` (``client`` or ``server``).

    Options (``ZC_EVENTS_MIDDLEWARE_OPTIONS["opentelemetry"]``, or keyword arguments):
    ``tracer_provider``, ``meter_provider`` and ``propagator`` (default: the global ones that
    the OpenTelemetry SDK, or ``opentelemetry-instrument``, configures).

    List it first in ``ZC_EVENTS_MIDDLEWARE`` so its headers are added before a signature is
    computed; a request that an inner middleware refuses (a bad signature) still gets a server
    span, marked as failed.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        propagator: TextMapPropagator | None = None,
    ) -> None:
        self.tracer = trace.get_tracer(
            "zc_events_opentelemetry", __version__, tracer_provider, schema_url=SCHEMA_URL
        )
        meter = metrics.get_meter(
            "zc_events_opentelemetry", __version__, meter_provider, schema_url=SCHEMA_URL
        )
        self.client_duration = meter.create_histogram(
            CLIENT_DURATION, unit="s", description="Duration of zc-events calls, as the caller saw"
        )
        self.process_duration = meter.create_histogram(
            PROCESS_DURATION, unit="s", description="Duration of handling zc-events messages"
        )
        self.errors = meter.create_counter(
            ERRORS, unit="{call}", description="zc-events calls and messages that failed"
        )
        self.propagator = propagator
        if settings is None:
            settings = get_settings()
        backend = settings.backend
        self.system = backend if isinstance(backend, str) and backend else "zc_events"
        #: Client spans of calls in flight: message id -> (span, start).
        self._calls: dict[str, tuple[Span, float]] = {}
        #: The propagator last used, the header names it reads, and how it is handled.
        self._propagator: tuple[TextMapPropagator | None, frozenset[str], int] = (
            None,
            frozenset(),
            _GENERIC,
        )

    def bind(self, backend: str) -> None:
        """Name the backend in ``messaging.system``."""
        if backend:
            self.system = backend

    # -- helpers ---------------------------------------------------------------------------
    def _propagation(self) -> tuple[TextMapPropagator, frozenset[str], int]:
        """The propagator in use (the configured or the global one), the header names it
        reads, and how it is handled; recomputed only when the propagator changes."""
        propagator = self.propagator or propagate.get_global_textmap()
        cached, fields, kind = self._propagator
        if cached is not propagator:
            fields, kind = frozenset(propagator.fields), _kind_of(propagator)
            self._propagator = (propagator, fields, kind)
        return propagator, fields, kind

    def _inject(self, headers: dict[str, Any], span: Span) -> dict[str, Any]:
        """``headers`` with the trace context of ``span`` (a valid one) added."""
        propagator, _, kind = self._propagation()
        span_context = span.get_span_context()
        if (
            kind
            and not span_context.trace_state
            and (kind == _W3C or not baggage.get_all())  # the baggage propagator adds nothing
        ):
            # What TraceContextTextMapPropagator.inject writes.
            value = (
                f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-"
                f"{span_context.trace_flags:02x}"
            )
            return {**headers, TRACEPARENT: value}
        carrier: dict[str, str] = {}
        propagator.inject(carrier, trace.set_span_in_context(span))
        return {**headers, **carrier} if carrier else headers

    def _extract(self, headers: Mapping[str, Any]) -> context.Context | None:
        """The caller's context from ``headers``, or None when they carry none (then the
        current context is the parent)."""
        propagator, fields, kind = self._propagation()
        if fields.isdisjoint(headers):
            return None
        if kind and TRACESTATE not in headers and (kind == _W3C or BAGGAGE not in headers):
            value = headers.get(TRACEPARENT)
            match = _CANONICAL_TRACEPARENT.fullmatch(value) if isinstance(value, str) else None
            if match is not None:
                trace_id, span_id, flags = match.groups()
                if trace_id != _ZERO_TRACE_ID and span_id != _ZERO_SPAN_ID:
                    # What TraceContextTextMapPropagator.extract returns (on a new Context).
                    parent = SpanContext(
                        int(trace_id, 16),
                        int(span_id, 16),
                        is_remote=True,
                        trace_flags=TraceFlags(int(flags, 16)),
                    )
                    return trace.set_span_in_context(NonRecordingSpan(parent), context.Context())
        return propagator.extract(headers, getter=_getter)

    def _attributes(self, envelope: Envelope, operation: str) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            SYSTEM: self.system,
            OPERATION_TYPE: operation,
            DESTINATION: envelope.key,
            MESSAGE_ID: envelope.id,
            METHOD: envelope.method,
        }
        cause = envelope.headers.get("x-zc-events-caused-by")
        if isinstance(cause, str):
            attributes[CAUSED_BY] = cause
        return attributes

    def _labels(self, envelope: Envelope, outcome: str, side: str) -> dict[str, str]:
        return {
            DESTINATION: envelope.key,
            METHOD: envelope.method,
            SYSTEM: self.system,
            OUTCOME: outcome,
            SIDE: side,
        }

    # -- client side -----------------------------------------------------------------------
    def outgoing_request(self, envelope: Envelope) -> Envelope:
        """Start the client span; put its trace context in the envelope headers."""
        waits = envelope.reply_to is not None or envelope.deadline is not None
        span = self.tracer.start_span(
            f"send {envelope.key}", kind=SpanKind.CLIENT if waits else SpanKind.PRODUCER
        )
        if span.is_recording():  # without an SDK, skip the attributes
            span.set_attributes(self._attributes(envelope, "send"))
        if span.get_span_context().is_valid:  # a trace to continue (without an SDK: none)
            envelope.headers = self._inject(envelope.headers, span)
        calls = self._calls
        if len(calls) >= MAX_CALLS_IN_FLIGHT:  # a client that never reports calls' ends
            stale, _ = calls.pop(next(iter(calls)))
            stale.end()
        calls[envelope.id] = (span, time.perf_counter())
        return envelope

    def request_finished(
        self, envelope: Envelope, response: Response | None, error: BaseException | None
    ) -> None:
        """End the client span with the outcome; record the duration (and the error)."""
        found = self._calls.pop(envelope.id, None)
        if found is None:
            return
        span, start = found
        self._finish(span, envelope, "client", start, response, error)

    # -- server side -----------------------------------------------------------------------
    def incoming_request(self, envelope: Envelope) -> Envelope:
        """Start the server span as the caller's child, current while the handler runs."""
        self._start_server_span(envelope)
        return envelope

    def _start_server_span(self, envelope: Envelope) -> tuple[Span, object, float]:
        parent = self._extract(envelope.headers)
        span = self.tracer.start_span(
            f"process {envelope.key}",
            context=parent,
            kind=SpanKind.SERVER if envelope.reply_to is not None else SpanKind.CONSUMER,
        )
        if span.is_recording():
            span.set_attributes(self._attributes(envelope, "process"))
        token = None
        if parent is not None or span.get_span_context().is_valid:  # else nothing to pass on
            token = context.attach(trace.set_span_in_context(span, parent))
        found = (span, token, time.perf_counter())
        _serving.set(found)
        return found

    def outgoing_response(self, envelope: Envelope, response: Response) -> Response:
        """End the server span with the handler's outcome; record the duration."""
        found = _serving.get()
        if found is None:
            # An earlier middleware refused the message (a bad signature) before the span
            # started: still show it, as a failed span.
            found = self._start_server_span(envelope)
        _serving.set(None)
        span, token, start = found
        if token is not None:
            context.detach(token)  # type: ignore[arg-type]
        self._finish(span, envelope, "server", start, response, None)
        return response

    def _finish(
        self,
        span: Span,
        envelope: Envelope,
        side: str,
        start: float,
        response: Response | None,
        error: BaseException | None,
    ) -> None:
        """End ``span`` with the call's outcome; record its duration (and error) metrics."""
        if error is not None:
            outcome = type(error).__name__
            if span.is_recording():
                span.set_attribute(ERROR_TYPE, outcome)
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, f"{outcome}: {error}"[:200]))
        elif response is not None and response.has_errors:
            outcome = _error_type(response)
            if span.is_recording():
                span.set_attribute(ERROR_TYPE, outcome)
                span.set_status(Status(StatusCode.ERROR, _error_message(response)))
        else:
            outcome = "ok"
        span.end()
        labels = self._labels(envelope, outcome, side)
        duration = self.client_duration if side == "client" else self.process_duration
        duration.record(time.perf_counter() - start, labels)
        if outcome != "ok":
            self.errors.add(1, labels)

    def __repr__(self) -> str:
        return f"<OpenTelemetryMiddleware system={self.system!r}>"
