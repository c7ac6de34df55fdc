"""Serving one message, the same on every transport.

A worker receives bytes from its broker and must end with exactly one of: acknowledge it
(after sending the reply, if one is due) or dead-letter it. Everything between the bytes and
that decision lives here, once, so the transports differ only in their I/O:

- :func:`serve_native` — a native envelope: decode, skip if expired, dispatch, encode the reply.
- :class:`LegacyServer` — a zc_events 0.4 request (AMQP body or decoded Celery task): decode,
  ignore keys other services handle, dispatch, push the reply to Redis with bounded retries.
  Legacy notifications (``microservice.notification``, protocol 1) take the same path: the
  handler named by the event type gets the keyword arguments as ``data``; one nobody here
  handles is dead-lettered (it was routed to this service by its kind).
- :func:`delivery_decision` — the delivery limit (``ZC_EVENTS_MAX_DELIVERIES``): a message whose
  handler keeps killing the worker is dead-lettered instead of looping forever.
- :meth:`Outcome.dead_letter_headers` — the headers a dead-lettered copy carries.

Rules: anything that fails while decoding or dispatching dead-letters the message (never an
exception into the broker library's callback); a failed ``*_no_wait`` handler dead-letters it
with the error unless ``ZC_EVENTS_DEAD_LETTER_FAILED_NO_WAIT`` is off; a failing Redis push is
retried and never runs the handler again.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from . import legacy
from ._envelope import Envelope
from ._handlers import Dispatcher
from ._response import Response
from ._settings import Settings, global_settings
from .legacy_redis import PUSH_BACKOFF, push_reply_with_retry

__all__ = [
    "ATTEMPTS_HEADER",
    "BROKER_DELIVERY_COUNT_HEADER",
    "ERROR_HEADER",
    "ERROR_MESSAGE_HEADER",
    "ERROR_TYPE_HEADER",
    "FAILED_AT_HEADER",
    "FAILURES_HEADER",
    "QUEUE_HEADER",
    "LegacyServer",
    "Outcome",
    "delivery_decision",
    "failed_dispatch",
    "native_envelope",
    "native_outcome",
    "serve_native",
    "too_many_deliveries",
]

log = logging.getLogger("zc_events.serving")

#: Why the message was dead-lettered (one line).
ERROR_HEADER = "x-zc-events-error"
#: The handler's error type and message, for a failed ``*_no_wait`` message.
ERROR_TYPE_HEADER = "x-zc-events-error-type"
ERROR_MESSAGE_HEADER = "x-zc-events-error-message"
#: When it was dead-lettered: ISO 8601 UTC, ``2026-01-31T12:00:00.123Z``.
FAILED_AT_HEADER = "x-zc-events-failed-at"
#: How many times a handler was run on the message (including the last one).
ATTEMPTS_HEADER = "x-zc-events-attempts"
#: The queue the message was taken from (where a replay should put it back).
QUEUE_HEADER = "x-zc-events-queue"
#: On a copy a worker put back in its queue: deliveries that ended without an acknowledgement
#: (the worker died), counted by the workers themselves on classic queues.
FAILURES_HEADER = "x-zc-events-failures"
#: Set by RabbitMQ on quorum queues: how many times the message was delivered before.
BROKER_DELIVERY_COUNT_HEADER = "x-delivery-count"

#: Longest error message kept in a header (AMQP headers must fit in one frame).
_MAX_HEADER_TEXT = 1000


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a transport does with a message it served.

    ``dead_letter`` None: acknowledge it (after sending ``reply`` to the caller, when not
    None). Otherwise dead-letter it; ``dead_letter`` says why, and ``error_type`` /
    ``error_message`` carry the handler's error for a failed ``*_no_wait`` message.
    """

    reply: bytes | None = None
    dead_letter: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    key: str | None = None
    id: str | None = None

    @property
    def ack(self) -> bool:
        """True when the message is to be acknowledged (not dead-lettered)."""
        return self.dead_letter is None

    def dead_letter_headers(self, *, queue: str, attempts: int) -> dict[str, Any]:
        """The ``x-zc-events-*`` headers to add to the dead-lettered copy of the message."""
        headers: dict[str, Any] = {
            ERROR_HEADER: (self.dead_letter or "")[:_MAX_HEADER_TEXT],
            FAILED_AT_HEADER: _utc_now(),
            ATTEMPTS_HEADER: attempts,
            QUEUE_HEADER: queue,
        }
        if self.error_type is not None:
            headers[ERROR_TYPE_HEADER] = self.error_type[:_MAX_HEADER_TEXT]
            headers[ERROR_MESSAGE_HEADER] = (self.error_message or "")[:_MAX_HEADER_TEXT]
        return headers

    def dead_letter_copy(
        self,
        headers: Mapping[str, Any] | None,
        *,
        queue: str,
        dead_queue: str,
        attempts: int,
        what: str = "a message",
        logger: logging.Logger = log,
    ) -> dict[str, Any]:
        """Log the one line about dead-lettering this message from ``queue`` to ``dead_queue``
        (ERROR; WARNING for a failed handler, whose error the dispatcher logged) and return the
        headers of its copy: the message's own plus :meth:`dead_letter_headers`."""
        error = f" ({self.error_type}: {self.error_message})" if self.error_type else ""
        logger.log(
            logging.WARNING if self.error_type is not None else logging.ERROR,
            "dead-lettering %s from %r to %r (key %r, id %s): %s%s",
            what,
            queue,
            dead_queue,
            self.key,
            self.id,
            self.dead_letter,
            error,
        )
        copy = {**(headers or {}), **self.dead_letter_headers(queue=queue, attempts=attempts)}
        copy.pop(FAILURES_HEADER, None)
        return copy


def _utc_now() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _failed(exc: BaseException, stage: str) -> Outcome:
    return Outcome(dead_letter=f"{stage} failed: {type(exc).__name__}: {exc}"[:_MAX_HEADER_TEXT])


def _after_no_wait(envelope: Envelope, response: Response, dead_letter_failed: bool) -> Outcome:
    """A ``*_no_wait`` message was handled: keep its failure (dead-letter) or acknowledge."""
    if not response.has_errors:
        return Outcome(key=envelope.key, id=envelope.id)
    error = response.errors[0] if response.errors else {}
    error_type = str(error.get("type", "Error"))
    message = str(error.get("message", ""))
    if dead_letter_failed:
        return Outcome(
            dead_letter=f"the handler of no-wait {envelope.method} {envelope.key!r} failed",
            error_type=error_type,
            error_message=message,
            key=envelope.key,
            id=envelope.id,
        )
    log.error(
        "no-wait %s %r (id %s) failed and is dropped (ZC_EVENTS_DEAD_LETTER_FAILED_NO_WAIT is "
        "off): %s: %s",
        envelope.method,
        envelope.key,
        envelope.id,
        error_type,
        message,
    )
    return Outcome(key=envelope.key, id=envelope.id)


def serve_native(
    dispatcher: Dispatcher, body: bytes, *, dead_letter_failed_no_wait: bool = True
) -> Outcome:
    """Serve one native envelope (its wire bytes) with ``dispatcher``; never raises.

    The reply (for a waiting request) is in ``Outcome.reply``; an expired request is
    acknowledged without a reply (nobody waits for it). An asyncio worker does the same with
    :func:`native_envelope`, ``await dispatcher.adispatch(envelope)`` and :func:`native_outcome`.
    """
    envelope = native_envelope(dispatcher, body)
    if isinstance(envelope, Outcome):
        return envelope
    try:
        response = dispatcher.dispatch(envelope)
    except Exception as exc:
        return failed_dispatch(envelope, exc)
    return native_outcome(dispatcher, envelope, response, dead_letter_failed_no_wait)


def native_envelope(dispatcher: Dispatcher, body: bytes) -> Envelope | Outcome:
    """The envelope to dispatch, or the Outcome when there is nothing to dispatch: a message
    that cannot be decoded (dead-letter) or whose deadline passed (acknowledge). Never raises."""
    try:
        envelope = dispatcher.decode(body)
    except Exception as exc:
        return _failed(exc, "decoding")
    try:
        if dispatcher.skip_expired(envelope):
            return Outcome(key=envelope.key, id=envelope.id)
    except Exception as exc:
        return failed_dispatch(envelope, exc)
    return envelope


def failed_dispatch(envelope: Envelope, exc: BaseException) -> Outcome:
    """The outcome of a message whose dispatching raised (dead-letter it)."""
    outcome = _failed(exc, f"dispatching {envelope.method} {envelope.key!r}")
    return Outcome(dead_letter=outcome.dead_letter, key=envelope.key, id=envelope.id)


def native_outcome(
    dispatcher: Dispatcher,
    envelope: Envelope,
    response: Response,
    dead_letter_failed_no_wait: bool = True,
) -> Outcome:
    """What to do once ``envelope`` was dispatched: reply, acknowledge or dead-letter."""
    try:
        if envelope.reply_to is None:
            return _after_no_wait(envelope, response, dead_letter_failed_no_wait)
        reply = dispatcher.encode_response(envelope, response)
    except Exception as exc:
        return failed_dispatch(envelope, exc)
    return Outcome(reply=reply, key=envelope.key, id=envelope.id)


Decision = Literal["handle", "requeue", "dead_letter"]


def delivery_decision(
    headers: Mapping[str, Any] | None, redelivered: bool, max_deliveries: int
) -> tuple[Decision, int]:
    """Apply the delivery limit to one delivery; return ``(decision, failures)``.

    ``failures`` is how many earlier deliveries ended without an acknowledgement (the worker
    died or lost its connection mid-message). On quorum queues the broker counts them
    (``x-delivery-count``); on classic queues only a ``redelivered`` flag exists, so a worker
    that sees one puts a copy carrying the count (:data:`FAILURES_HEADER`) at the back of the
    queue and acknowledges the original (``"requeue"``) instead of running the handler on it.
    ``"dead_letter"`` once ``failures >= max_deliveries``; else ``"handle"``.
    """
    failures = 0
    counted_by_broker = False
    if headers:
        broker_count = headers.get(BROKER_DELIVERY_COUNT_HEADER)
        if isinstance(broker_count, int) and not isinstance(broker_count, bool):
            failures, counted_by_broker = max(broker_count, 0), True
        else:
            ours = headers.get(FAILURES_HEADER)
            if isinstance(ours, int) and not isinstance(ours, bool):
                failures = max(ours, 0)
    if redelivered and not counted_by_broker:
        failures += 1
    if failures >= max_deliveries:
        return "dead_letter", failures
    if redelivered and not counted_by_broker:
        return "requeue", failures
    return "handle", failures


def too_many_deliveries(failures: int, max_deliveries: int) -> Outcome:
    """The outcome for a message the delivery limit stops."""
    return Outcome(
        dead_letter=(
            f"delivered {failures} time(s) without being acknowledged (the worker died while "
            f"handling it); the limit is ZC_EVENTS_MAX_DELIVERIES={max_deliveries}"
        )
    )


class LegacyServer:
    """Serves zc_events 0.4 requests: used by the RabbitMQ legacy consumer and the Celery task.

    ``redis`` returns the redis-py client replies are pushed with (called on each push, so a
    per-process client can be made after a fork). Keys this service does not handle are
    acknowledged and ignored: on the fanout, the service that handles them answers.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        redis: Callable[[], Any],
        *,
        settings: Settings | None = None,
        push_backoff: Sequence[float] = PUSH_BACKOFF,
    ) -> None:
        settings = settings if settings is not None else global_settings()
        self.dispatcher = dispatcher
        self.redis = redis
        self.push_backoff = tuple(push_backoff)
        self.dead_letter_failed_no_wait = settings.dead_letter_failed_no_wait

    def serve_body(self, body: bytes, headers: Mapping[str, Any] | None) -> Outcome:
        """Serve a request from its AMQP body and headers (Celery protocol 2 or 1)."""
        try:
            request = legacy.parse_request(
                body, headers, max_bytes=self.dispatcher.max_message_bytes
            )
        except Exception as exc:
            return _failed(exc, "decoding")
        return self.serve_request(request)

    def serve_task(
        self, args: Any, kwargs: Any, task_id: str | None, task: str = legacy.EVENT_TASK
    ) -> Outcome:
        """Serve a ``microservice.event`` (or ``microservice.notification``) task already
        decoded by Celery."""
        try:
            request = legacy.parse_task(
                list(args) if isinstance(args, tuple) else args, kwargs, task=task, task_id=task_id
            )
        except Exception as exc:
            return _failed(exc, "decoding")
        return self.serve_request(request)

    def serve_request(self, request: legacy.LegacyRequest) -> Outcome:
        """Dispatch a decoded request; push its reply (retried, never re-dispatched)."""
        envelope = request.envelope
        if request.task not in (legacy.EVENT_TASK, legacy.NOTIFICATION_TASK):
            return Outcome(dead_letter=f"unknown task {request.task!r}", id=envelope.id)
        try:
            if request.task == legacy.NOTIFICATION_TASK and not self.dispatcher.handles(
                envelope.key
            ):
                # Routed to this service by kind: nobody else will handle it.
                return Outcome(
                    dead_letter=(
                        f"no handler for notification {envelope.key!r}: register a handler "
                        f"named {envelope.key!r} in the service that consumes these notifications"
                    ),
                    key=envelope.key,
                    id=envelope.id,
                )
            if not self.dispatcher.handles(envelope.key):
                log.debug(
                    "ignoring legacy %s %r (id %s): another service on the fanout handles it",
                    envelope.method,
                    envelope.key,
                    envelope.id,
                )
                return Outcome(key=envelope.key, id=envelope.id)
            response = self.dispatcher.dispatch(envelope)
            if request.response_key is None:
                return _after_no_wait(envelope, response, self.dead_letter_failed_no_wait)
            body = legacy.encode_response(response, key=envelope.key)
        except Exception as exc:
            return failed_dispatch(envelope, exc)
        push_reply_with_retry(
            self.redis, request.response_key, body, key=envelope.key, backoff=self.push_backoff
        )
        return Outcome(key=envelope.key, id=envelope.id)
