"""The zc_events 0.4 wire format, shared by the legacy-compatible transports.

Pure functions over bytes and dicts: no broker library is imported and no I/O is done here
(the Redis side is :mod:`zc_events.legacy_redis`, serving is :mod:`zc_events.serving`). The
RabbitMQ legacy backend and the Celery backend both build and read messages with them, so that
services running the old library and services running this one understand each other in both
directions.

A request is a Celery protocol-2 task message for the task ``microservice.event``::

    body     [[key, payload], {}, {"callbacks":null,"errbacks":null,"chain":null,"chord":null}]
    payload  {"data", "id", "headers", "response_key", "_backend": {"type", "method", "key"}}

A reply is ``RPUSH <response_key> {"data", "has_errors", "errors"}`` + ``EXPIRE 60`` in Redis,
read by the caller with ``BLPOP``. The deprecated protocol-1 events
(``{"task", "id", "args": [event_type, *args], "kwargs": {"task_id", ...}}``) are read too.

Notifications (``send_email`` and the text, push and slack kinds) are protocol-1 messages for the
task ``microservice.notification`` on the topic exchange ``NOTIFICATIONS_EXCHANGE``, routing key
``microservice.notification.<kind>``: :func:`notification_message` builds one, and a backend
that can publish them implements :class:`NotificationPublisher`.
The full specification, field by field, is docs/protocol.md, section 4.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from . import _json
from ._envelope import METHODS, Envelope, new_id, validate_key
from ._exceptions import ConfigurationError, EnvelopeError
from ._response import Response, encode_reply

__all__ = [
    "ARGSREPR_MAXSIZE",
    "BACKEND_TYPE",
    "EMBED",
    "EVENT_TASK",
    "NOTIFICATION_KINDS",
    "NOTIFICATION_ROUTING_PREFIX",
    "NOTIFICATION_TASK",
    "RESPONSE_TTL",
    "LegacyEnvelope",
    "LegacyPublish",
    "LegacyRequest",
    "NotificationPublisher",
    "build_payload",
    "build_request",
    "decode_response",
    "dumps_legacy",
    "encode_response",
    "is_response_key",
    "notification_kinds",
    "notification_message",
    "notification_routing_key",
    "parse_request",
    "parse_task",
    "response_dict",
    "task_message",
]

#: The Celery task name every legacy request is addressed to.
EVENT_TASK = "microservice.event"
#: The Celery task name of every legacy notification.
NOTIFICATION_TASK = "microservice.notification"
#: The notification kinds of the old library; kind ``k`` is routed with
#: ``microservice.notification.<k>`` on ``NOTIFICATIONS_EXCHANGE``.
NOTIFICATION_KINDS: tuple[str, ...] = ("email", "text", "push", "slack")
NOTIFICATION_ROUTING_PREFIX = NOTIFICATION_TASK + "."
#: Seconds a reply stays in Redis after it is pushed.
RESPONSE_TTL = 60
#: ``_backend.type`` in every legacy payload.
BACKEND_TYPE = "rabbitmqfanout"
#: The third element of a Celery protocol-2 body, as the old client sent it.
EMBED: dict[str, None] = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
#: ``argsrepr`` longer than this is cut (Celery's own limit): AMQP headers must fit in one frame.
ARGSREPR_MAXSIZE = 1024
#: Priority of a request that waits for a reply, and of one that does not.
WAITING_PRIORITY = 9
NO_WAIT_PRIORITY = 0
#: Envelope header that carries a protocol-1 event's positional arguments after the event type.
EVENT_ARGS_HEADER = "legacy_args"
#: What a ``response_key`` must look like: a UUID, as the old client made them. Anything else
#: would let a sender make a worker write to (and expire) any key of the Redis database.
_RESPONSE_KEY = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")

_encoder = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)
# Where the standard library and ujson differ: ujson writes DEL (0x7f) raw, and float exponents
# without a leading zero (1e-5, not 1e-05). Strings are matched first so they are left alone.
_DEL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u007f")
_EXPONENT = re.compile(r'"(?:[^"\\]|\\.)*"|(?<=[0-9])e([+-])0(?=[0-9])')


def _exponent(match: re.Match[str]) -> str:
    sign = match.group(1)
    return match.group(0) if sign is None else "e" + sign


def dumps_legacy(obj: Any) -> bytes:
    """Encode ``obj`` exactly as the old library's ujson did.

    Compact, keys in insertion order, ``/`` written as ``\\/`` and non-ASCII as ``\\uXXXX``.
    Raises TypeError for values that are not JSON (including NaN and infinities).
    """
    try:
        text = _encoder.encode(obj)
    except ValueError as exc:  # NaN / infinity / circular reference
        raise TypeError(str(exc)) from exc
    if "e-0" in text or "e+0" in text:
        text = _EXPONENT.sub(_exponent, text)
    if "\\u007f" in text:
        text = _DEL_ESCAPE.sub("\\1\x7f", text)
    # "/" can only occur inside JSON strings, so this escapes exactly what ujson escapes.
    return text.replace("/", "\\/").encode("ascii")


@dataclass(frozen=True, slots=True)
class LegacyPublish:
    """One legacy request as it goes on the wire: AMQP ``body`` and basic ``properties``.

    ``properties`` uses pika's ``BasicProperties`` keyword names.
    """

    body: bytes
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class LegacyEnvelope(Envelope):
    """An envelope read off the legacy wire, which carries no deadline, sent_at or priority:
    the decoder fills them in (priority 9 when waiting, else 0; sent_at the time of reading)."""

    uncarried: ClassVar[frozenset[str]] = frozenset({"deadline", "sent_at", "priority"})


@dataclass(frozen=True, slots=True)
class LegacyRequest:
    """A legacy request read off the wire.

    ``envelope.reply_to`` is ``response_key`` (None for no-wait messages and events), so a
    :class:`~zc_events.Dispatcher` replies exactly when the old client waits.
    """

    envelope: Envelope
    response_key: str | None
    protocol: int
    task: str


def build_payload(envelope: Envelope, response_key: str | None) -> dict[str, Any]:
    """The payload dict (``body[0][1]``) the old client sent for ``envelope``."""
    return {
        "data": envelope.data,
        "id": envelope.id,
        "headers": envelope.headers,
        "response_key": response_key,
        "_backend": {"type": BACKEND_TYPE, "method": envelope.method, "key": envelope.key},
    }


def _argsrepr(args: object) -> str:
    text = repr(args)
    if len(text) > ARGSREPR_MAXSIZE:
        text = text[: ARGSREPR_MAXSIZE - 3] + "..."
    return text


def build_request(envelope: Envelope, response_key: str | None) -> LegacyPublish:
    """The Celery protocol-2 message the old client published for ``envelope``.

    ``response_key`` is the Redis list the reply goes to (None for ``*_no_wait``). Raises
    :class:`EnvelopeError` when data or headers are not JSON.
    """
    payload = build_payload(envelope, response_key)
    try:
        return task_message(
            [envelope.key, payload],
            {},
            envelope.id,
            priority=WAITING_PRIORITY if response_key else NO_WAIT_PRIORITY,
        )
    except TypeError as exc:
        raise EnvelopeError(
            f"message for {envelope.key!r} cannot be encoded as JSON: {exc} "
            "(data and headers must be JSON values: dict, list, str, int, float, bool, None)",
            "data",
        ) from exc


def task_message(
    args: list[Any],
    kwargs: dict[str, Any],
    task_id: str,
    *,
    priority: int = NO_WAIT_PRIORITY,
    task: str = EVENT_TASK,
) -> LegacyPublish:
    """A Celery protocol-2 task message (body and properties) as the old client encoded it.

    Raises TypeError when ``args`` or ``kwargs`` are not JSON.
    """
    body = dumps_legacy([args, kwargs, EMBED])
    headers = {
        "lang": "py",
        "task": task,
        "id": task_id,
        "root_id": task_id,
        "parent_id": None,
        "group": None,
        "retries": 0,
        "timelimit": [None, None],
        "origin": "",
        "argsrepr": _argsrepr(args),
        "kwargsrepr": _argsrepr(kwargs) if kwargs else "{}",
    }
    properties = {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "headers": headers,
        "priority": priority,
        "correlation_id": task_id,
    }
    return LegacyPublish(body, properties)


def notification_routing_key(kind: str) -> str:
    """``microservice.notification.<kind>``; raises ConfigurationError for an unknown kind."""
    if kind not in NOTIFICATION_KINDS:
        raise ConfigurationError(
            f"unknown notification kind {kind!r}: the kinds are {', '.join(NOTIFICATION_KINDS)}"
        )
    return NOTIFICATION_ROUTING_PREFIX + kind


def notification_kinds(value: object, *, who: str = "legacy backend") -> tuple[str, ...]:
    """Check the ``notifications`` option (a list of kinds, e.g. ``["email"]``) of ``who``.

    Returns the kinds without duplicates, in order. Raises ConfigurationError naming the option
    and the valid kinds.
    """
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, list | tuple | set | frozenset):
        raise ConfigurationError(
            f"the {who} option 'notifications' must be a list of notification kinds "
            f"(some of {', '.join(NOTIFICATION_KINDS)}), got {value!r}"
        )
    kinds: list[str] = []
    for kind in value:
        if kind not in NOTIFICATION_KINDS:
            raise ConfigurationError(
                f"the {who} option 'notifications' names an unknown kind {kind!r}: the kinds are "
                f"{', '.join(NOTIFICATION_KINDS)}"
            )
        if kind not in kinds:
            kinds.append(kind)
    return tuple(kinds)


def notification_message(
    event_type: str,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    message_id: str | None = None,
    priority: int = NO_WAIT_PRIORITY,
) -> LegacyPublish:
    """The notification the old ``emit_microservice_<kind>_notification(event_type, *args,
    **kwargs)`` published: a protocol-1 body and its AMQP properties.

    Body: ``{"task": "microservice.notification", "id", "args": [event_type, *args], "kwargs":
    {"task_id": id, **kwargs}}`` (a ``task_id`` in ``kwargs`` replaces the message id in the
    first position, as ``send_email``'s email id did). Properties: ``content_type``,
    ``content_encoding`` and ``priority`` only (transient, as before). ``message_id`` defaults
    to a new uuid4. Raises EnvelopeError for a bad event type or values that are not JSON.
    """
    validate_key(event_type)
    task_id = message_id or new_id()
    keyword_args: dict[str, Any] = {"task_id": task_id}
    keyword_args.update(kwargs or {})
    message = {
        "task": NOTIFICATION_TASK,
        "id": task_id,
        "args": [event_type, *args],
        "kwargs": keyword_args,
    }
    try:
        body = dumps_legacy(message)
    except TypeError as exc:
        raise EnvelopeError(
            f"notification {event_type!r} cannot be encoded as JSON: {exc} "
            "(its arguments must be JSON values: dict, list, str, int, float, bool, None)",
            "data",
        ) from exc
    properties = {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "priority": priority,
    }
    return LegacyPublish(body, properties)


@runtime_checkable
class NotificationPublisher(Protocol):
    """A backend that can publish legacy notifications (``rabbitmq_legacy``, ``celery``).

    ``publish_notification(kind, message)`` publishes ``message`` (from
    :func:`notification_message`) on ``NOTIFICATIONS_EXCHANGE`` with routing key
    ``microservice.notification.<kind>`` and returns once the broker confirmed it. It raises
    ConfigurationError when ``NOTIFICATIONS_EXCHANGE`` is not set, NoRouteError when no queue
    is bound for that kind, PublishError when the broker did not take it.
    """

    def publish_notification(self, kind: str, message: LegacyPublish) -> None:
        """Publish one notification of ``kind``; return once the broker confirmed it."""


def _method(value: object) -> str:
    if value is None:
        return "POST"
    method = value.upper() if isinstance(value, str) else value
    if not isinstance(method, str) or method not in METHODS:
        raise EnvelopeError(
            f"legacy payload field '_backend.method' must be one of {', '.join(sorted(METHODS))}, "
            f"got {value!r}",
            "method",
        )
    return method


def _is_rpc_payload(value: object) -> bool:
    return isinstance(value, dict) and ("_backend" in value or "response_key" in value)


def parse_task(
    args: object,
    kwargs: object,
    *,
    task: str = EVENT_TASK,
    task_id: str | None = None,
    protocol: int = 2,
) -> LegacyRequest:
    """Read a decoded ``microservice.event`` call (its positional and keyword arguments).

    ``args == [key, payload]`` is an RPC request; ``args == [event_type, *args]`` with keyword
    arguments is an event (a protocol-1 ``emit_microservice_event``): key = event type, method
    POST, data = the keyword arguments without ``task_id``, and any further positional arguments
    in the ``legacy_args`` header. A ``microservice.notification`` is read the same way, except
    that ``data`` keeps ``task_id`` (``send_email`` puts its email id there). Raises
    :class:`EnvelopeError` naming what is wrong.
    """
    if not isinstance(args, list | tuple) or not args:
        raise EnvelopeError(
            f"legacy {task!r} message must have a non-empty args list [key, payload], "
            f"got {type(args).__name__}",
            "key",
        )
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict):
        raise EnvelopeError(
            f"legacy {task!r} kwargs must be an object, got {type(kwargs).__name__}"
        )
    key = validate_key(args[0])
    if len(args) == 2 and not kwargs and _is_rpc_payload(args[1]):
        payload: dict[str, Any] = args[1]
        backend = payload.get("_backend") or {}
        if not isinstance(backend, dict):
            raise EnvelopeError("legacy payload field '_backend' must be an object", "_backend")
        msg_id = payload.get("id") or task_id
        if not isinstance(msg_id, str) or not msg_id:
            raise EnvelopeError("legacy payload field 'id' must be a non-empty string", "id")
        headers = payload.get("headers")
        if headers is None:
            headers = {}
        elif not isinstance(headers, dict):
            raise EnvelopeError("legacy payload field 'headers' must be an object", "headers")
        response_key = payload.get("response_key")
        if response_key is not None and not is_response_key(response_key):
            raise EnvelopeError(
                f"legacy payload field 'response_key' must be a UUID or null, got "
                f"{str(response_key)[:80]!r}",
                "reply_to",
            )
        envelope = LegacyEnvelope(
            key,
            _method(backend.get("method")),
            payload.get("data"),
            headers,
            msg_id,
            response_key,
            None,
            WAITING_PRIORITY if response_key else NO_WAIT_PRIORITY,
            time.time(),
        )
        return LegacyRequest(envelope, response_key, protocol, task)
    if task == NOTIFICATION_TASK:  # task_id may be the sender's own id (send_email's email id)
        data = dict(kwargs)
    else:
        data = {k: v for k, v in kwargs.items() if k != "task_id"}
    event_id = task_id or kwargs.get("task_id")
    if not isinstance(event_id, str) or not event_id:
        raise EnvelopeError(f"legacy {task!r} event {key!r} has no task id", "id")
    event_headers: dict[str, Any] = {}
    if len(args) > 1:
        event_headers[EVENT_ARGS_HEADER] = list(args[1:])
    envelope = LegacyEnvelope(
        key, "POST", data, event_headers, event_id, None, None, 0, time.time()
    )
    return LegacyRequest(envelope, None, protocol, task)


def parse_request(
    body: bytes | str,
    headers: Mapping[str, Any] | None = None,
    *,
    max_bytes: int | None = None,
) -> LegacyRequest:
    """Read a legacy request from its AMQP body (and headers, for protocol 2).

    Accepts Celery protocol 2 (``headers["task"]`` set, body ``[args, kwargs, embed]``) and the
    deprecated protocol-1 events (``{"task", "id", "args", "kwargs"}`` with no task header).
    Raises :class:`EnvelopeError` naming what is wrong, including a body larger than
    ``max_bytes`` (a worker passes ``ZC_EVENTS_MAX_MESSAGE_BYTES``).
    """
    if max_bytes is not None and len(body) > max_bytes:
        raise EnvelopeError(
            f"legacy message is {len(body)} bytes, over ZC_EVENTS_MAX_MESSAGE_BYTES ({max_bytes})"
        )
    try:
        _json.check_depth(body)
        obj = _json.loads(body)
    except (ValueError, TypeError, RecursionError) as exc:
        raise EnvelopeError(f"legacy message is not valid JSON: {exc}") from exc
    task = headers.get("task") if headers else None
    if task is not None:
        if not isinstance(task, str):
            raise EnvelopeError(f"legacy message header 'task' must be a string, got {task!r}")
        if not isinstance(obj, list) or len(obj) != 3:
            raise EnvelopeError(
                f"legacy protocol-2 message for task {task!r} must have a body "
                "[args, kwargs, embed]"
            )
        task_id = headers.get("id") if headers else None
        return parse_task(
            obj[0],
            obj[1],
            task=task,
            task_id=task_id if isinstance(task_id, str) else None,
            protocol=2,
        )
    if isinstance(obj, dict) and "task" in obj:
        task = obj["task"]
        if not isinstance(task, str):
            raise EnvelopeError(f"legacy protocol-1 field 'task' must be a string, got {task!r}")
        msg_id = obj.get("id")
        return parse_task(
            obj.get("args"),
            obj.get("kwargs"),
            task=task,
            task_id=msg_id if isinstance(msg_id, str) else None,
            protocol=1,
        )
    raise EnvelopeError(
        "legacy message has no task: expected a protocol-2 body with a 'task' header "
        "or a protocol-1 body {'task', 'id', 'args', 'kwargs'}"
    )


def response_dict(response: Response) -> dict[str, Any]:
    """``response.to_dict()`` with a ``trace`` key on every error (empty unless tracebacks are
    sent): old clients read ``error['trace']`` and fail without it."""
    out = response.to_dict()
    if any("trace" not in error for error in response.errors):
        out["errors"] = [
            error if "trace" in error else {**error, "trace": ""} for error in response.errors
        ]
    return out


def is_response_key(value: object) -> bool:
    """True if ``value`` is a valid ``response_key``: a UUID string (``8-4-4-4-12`` hex)."""
    return isinstance(value, str) and _RESPONSE_KEY.fullmatch(value) is not None


def encode_response(response: Response, *, key: str | None = None) -> bytes:
    """The reply bytes the old worker pushed: ``{"data", "has_errors", "errors"}`` (+ ``status``,
    + ``signature`` when signed). Every error has a ``trace`` key (empty unless tracebacks are
    sent), as old clients expect.

    A result that is not JSON becomes an error response naming the handler ``key``, as on the
    native transports (:func:`zc_events.Response` encoding rules, one place for all).
    """
    return encode_reply(response, key, dumps_legacy, response_dict)


def decode_response(raw: bytes | str) -> Response:
    """Read a reply pushed by an old or a new worker; raises :class:`EnvelopeError` if malformed.

    The empty ``trace`` that :func:`encode_response` adds for old clients is removed again.
    """
    response = Response.decode(raw)
    if any(error.get("trace") == "" for error in response.errors):
        response.errors = [
            {k: v for k, v in error.items() if k != "trace" or v != ""} for error in response.errors
        ]
    return response


def __getattr__(name: str) -> Any:
    # push_reply and wait_reply (Redis I/O) moved to zc_events.legacy_redis in 1.1.
    if name in ("push_reply", "wait_reply"):
        import warnings

        from . import legacy_redis

        warnings.warn(
            f"zc_events.legacy.{name} moved to zc_events.legacy_redis.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(legacy_redis, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
