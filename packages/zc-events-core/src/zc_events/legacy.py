"""The zc_events 0.4 wire format, shared by the legacy-compatible transports.

Pure functions over bytes and dicts: no broker library is imported here. The RabbitMQ legacy
backend and the Celery backend both build and read messages with them, so that services running
the old library and services running this one understand each other in both directions.

A request is a Celery protocol-2 task message for the task ``microservice.event``::

    body     [[key, payload], {}, {"callbacks":null,"errbacks":null,"chain":null,"chord":null}]
    payload  {"data", "id", "headers", "response_key", "_backend": {"type", "method", "key"}}

A reply is ``RPUSH <response_key> {"data", "has_errors", "errors"}`` + ``EXPIRE 60`` in Redis,
read by the caller with ``BLPOP``. The deprecated protocol-1 events
(``{"task", "id", "args": [event_type, *args], "kwargs": {"task_id", ...}}``) are read too.
The full specification, field by field, is docs/protocol.md, section 4.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import _json
from ._envelope import METHODS, Envelope, validate_key
from ._exceptions import EnvelopeError, ReplyError, RequestTimeout
from ._response import Response

__all__ = [
    "ARGSREPR_MAXSIZE",
    "BACKEND_TYPE",
    "EMBED",
    "EVENT_TASK",
    "RESPONSE_TTL",
    "LegacyEnvelope",
    "LegacyPublish",
    "LegacyRequest",
    "build_payload",
    "build_request",
    "decode_response",
    "dumps_legacy",
    "encode_response",
    "parse_request",
    "parse_task",
    "push_reply",
    "response_dict",
    "wait_reply",
]

#: The Celery task name every legacy request is addressed to.
EVENT_TASK = "microservice.event"
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
#: Longest single BLPOP while waiting: stays under redis-py 8's default 5 s socket timeout.
_MAX_BLPOP_WAIT = 2.0

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


def _argsrepr(args: list[Any]) -> str:
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
    args = [envelope.key, payload]
    try:
        body = dumps_legacy([args, {}, EMBED])
    except TypeError as exc:
        raise EnvelopeError(
            f"message for {envelope.key!r} cannot be encoded as JSON: {exc} "
            "(data and headers must be JSON values: dict, list, str, int, float, bool, None)",
            "data",
        ) from exc
    task_id = envelope.id
    headers = {
        "lang": "py",
        "task": EVENT_TASK,
        "id": task_id,
        "root_id": task_id,
        "parent_id": None,
        "group": None,
        "retries": 0,
        "timelimit": [None, None],
        "origin": "",
        "argsrepr": _argsrepr(args),
        "kwargsrepr": "{}",
    }
    properties = {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "headers": headers,
        "priority": WAITING_PRIORITY if response_key else NO_WAIT_PRIORITY,
        "correlation_id": task_id,
    }
    return LegacyPublish(body, properties)


def _method(value: object) -> str:
    if value is None:
        return "POST"
    method = value.upper() if isinstance(value, str) else value
    if method not in METHODS:
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
    in the ``legacy_args`` header. Raises :class:`EnvelopeError` naming what is wrong.
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
        if response_key is not None and (not isinstance(response_key, str) or not response_key):
            raise EnvelopeError(
                "legacy payload field 'response_key' must be a non-empty string or null",
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


def encode_response(response: Response, *, key: str | None = None) -> bytes:
    """The reply bytes the old worker pushed: ``{"data", "has_errors", "errors"}`` (+ ``status``,
    + ``signature`` when signed). Every error has a ``trace`` key (empty unless tracebacks are
    sent), as old clients expect.

    A result that is not JSON becomes an error response naming the handler ``key``, as on the
    native transports.
    """
    try:
        return dumps_legacy(response_dict(response))
    except TypeError as exc:
        handler = f"handler for {key!r}" if key else "handler"
        return dumps_legacy(
            response_dict(
                Response.error(
                    "TypeError",
                    f"{handler} returned a value that cannot be encoded as JSON: {exc}",
                )
            )
        )


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


def push_reply(redis_client: Any, response_key: str, body: bytes, ttl: int = RESPONSE_TTL) -> None:
    """``RPUSH response_key body`` + ``EXPIRE response_key ttl`` in one MULTI/EXEC.

    ``redis_client`` is any redis-py client (or anything with the same ``pipeline`` method).
    """
    pipe = redis_client.pipeline(transaction=True)
    pipe.rpush(response_key, body)
    pipe.expire(response_key, ttl)
    pipe.execute()


def _blpop_chunk(redis_client: Any) -> float:
    """Longest BLPOP that cannot trip the client's own socket timeout."""
    chunk = _MAX_BLPOP_WAIT
    try:
        socket_timeout = redis_client.connection_pool.connection_kwargs.get("socket_timeout")
    except AttributeError:
        socket_timeout = None
    if isinstance(socket_timeout, int | float) and socket_timeout > 0:
        chunk = min(chunk, socket_timeout / 2)
    return max(chunk, 0.01)


def _describe_redis(redis_client: Any) -> str:
    """``Redis at host:port/db`` for a redis-py client (never its password)."""
    try:
        kwargs = redis_client.connection_pool.connection_kwargs
    except AttributeError:
        return "Redis"
    if "path" in kwargs:
        return f"Redis at unix://{kwargs['path']}"
    return f"Redis at {kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def wait_reply(redis_client: Any, response_key: str, timeout: float, *, key: str) -> bytes:
    """Wait up to ``timeout`` seconds for the reply pushed to ``response_key``; return its bytes.

    Waits with short BLPOPs so that a client with a socket timeout (redis-py 8 defaults to 5 s)
    still waits the full ``timeout``. Raises :class:`RequestTimeout` naming ``key``, and
    :class:`ReplyError` naming the Redis server when Redis cannot be read (the request was
    published, so this is not a PublishError).
    """
    deadline = time.monotonic() + timeout
    chunk = _blpop_chunk(redis_client)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        # BLPOP 0 would block forever: never ask for less than 10 ms.
        wait = max(min(left, chunk), 0.01)
        try:
            item = redis_client.blpop([response_key], timeout=round(wait, 3))
        except Exception as exc:
            # redis.exceptions.TimeoutError (a socket timeout): the connection was dropped and is
            # reopened by the next command, so keep waiting until our own deadline.
            if type(exc).__name__ != "TimeoutError":
                raise ReplyError(
                    f"the request {key!r} was published, but its reply cannot be read from the "
                    f"reply store, {_describe_redis(redis_client)}: {exc} (check EVENTS_REDIS_URL "
                    "or the backend option 'redis_url')"
                ) from exc
            continue
        if item:
            value = item[1]
            return value.encode("utf-8") if isinstance(value, str) else bytes(value)
    raise RequestTimeout(
        f"no reply to {key!r} within {timeout:g} s (legacy Redis reply list {response_key!r})",
        key,
        timeout,
    )
