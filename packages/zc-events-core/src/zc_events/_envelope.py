"""The envelope: the one JSON object every transport carries (specified in docs/protocol.md)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import _json
from ._context import CAUSED_BY_HEADER, serving
from ._exceptions import EnvelopeError

__all__ = ["METHODS", "Envelope", "validate_key"]

VERSION = 1
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 255
_FIELDS = (
    "v",
    "id",
    "key",
    "method",
    "data",
    "headers",
    "reply_to",
    "deadline",
    "priority",
    "sent_at",
)


_FIELD_SET = frozenset(_FIELDS)
_valid_keys: set[str] = set()


def new_id() -> str:
    """A random uuid4 string (the same format as ``str(uuid.uuid4())``, at half the cost)."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid handler key, else raise :class:`EnvelopeError`."""
    if not isinstance(key, str):
        raise EnvelopeError(f"key must be a string, got {type(key).__name__}", "key")
    if key in _valid_keys:
        return key
    if not key:
        raise EnvelopeError("key must not be empty", "key")
    if len(key) > MAX_KEY_LENGTH:
        raise EnvelopeError(
            f"key is {len(key)} characters long; at most {MAX_KEY_LENGTH} are allowed", "key"
        )
    if not key.isprintable():
        raise EnvelopeError(f"key {key!r} contains non-printable characters", "key")
    if len(_valid_keys) < 4096:  # keys are few; remember the good ones
        _valid_keys.add(key)
    return key


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(slots=True)
class Envelope:
    """One message: a request for ``method`` on handler ``key`` with a JSON ``data`` body."""

    key: str
    method: str = "POST"
    data: Any = None
    headers: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    reply_to: str | None = None
    deadline: float | None = None
    priority: int = 0
    sent_at: float = field(default_factory=time.time)
    v: int = VERSION

    #: Fields the transport this envelope came over does not carry, so the decoder filled them
    #: in (the legacy wire has no deadline, sent_at or priority); signatures restore them.
    uncarried: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def create(
        cls,
        key: str,
        method: str = "POST",
        data: Any = None,
        headers: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        priority: int | None = None,
        reply_to: str | None = None,
    ) -> Envelope:
        """Build a validated envelope for a call; ``timeout`` sets the deadline from now.

        Inside a handler, the envelope's ``x-zc-events-caused-by`` header is set to the id of
        the request being served.
        """
        validate_key(key)
        if method not in METHODS:
            upper = method.upper() if isinstance(method, str) else method
            if upper not in METHODS:
                raise EnvelopeError(
                    f"method must be one of {', '.join(sorted(METHODS))}, got {method!r}", "method"
                )
            method = upper
        if headers is None:
            headers = {}
        elif not isinstance(headers, dict):
            raise EnvelopeError(f"headers must be a dict, got {type(headers).__name__}", "headers")
        cause = serving.get()
        if cause is not None:  # made by a handler: name the request it serves
            headers = {**headers, CAUSED_BY_HEADER: cause.id}
        if priority is None:
            priority = 0
        elif priority.__class__ is not int or not 0 <= priority <= 9:
            raise EnvelopeError(
                f"priority must be an int from 0 to 9, got {priority!r}", "priority"
            )
        now = time.time()
        deadline = None
        if timeout is not None:
            if not _number(timeout) or timeout <= 0:
                raise EnvelopeError(
                    f"timeout must be a positive number, got {timeout!r}", "deadline"
                )
            deadline = now + timeout
            if cause is not None and cause.deadline is not None and deadline > cause.deadline:
                deadline = cause.deadline  # never later than the request being served
        return cls(key, method, data, headers, new_id(), reply_to, deadline, priority, now)

    def to_dict(self) -> dict[str, Any]:
        """The wire form as a dict."""
        return {
            "v": self.v,
            "id": self.id,
            "key": self.key,
            "method": self.method,
            "data": self.data,
            "headers": self.headers,
            "reply_to": self.reply_to,
            "deadline": self.deadline,
            "priority": self.priority,
            "sent_at": self.sent_at,
        }

    def encode(self) -> bytes:
        """The wire form as JSON bytes; raises :class:`EnvelopeError` if data is not JSON."""
        try:
            return _json.dumps(self.to_dict())
        except TypeError as exc:
            raise EnvelopeError(
                f"message for {self.key!r} cannot be encoded as JSON: {exc} "
                "(data and headers must be JSON values: dict, list, str, int, float, bool, None)",
                "data",
            ) from exc

    @classmethod
    def decode(cls, raw: bytes | str) -> Envelope:
        """Parse and validate wire bytes; raises :class:`EnvelopeError` naming the bad field."""
        try:
            _json.check_depth(raw)
            obj = _json.loads(raw)
        except (ValueError, TypeError, RecursionError) as exc:
            raise EnvelopeError(f"message is not valid JSON: {exc}") from exc
        return cls.from_dict(obj)

    @classmethod
    def from_dict(cls, obj: object) -> Envelope:
        """Validate a decoded wire object and build the envelope."""
        if not isinstance(obj, dict):
            raise EnvelopeError(f"envelope must be a JSON object, got {type(obj).__name__}")
        unknown = () if obj.keys() == _FIELD_SET else obj.keys() - _FIELD_SET
        if unknown:
            raise EnvelopeError(
                f"envelope has unknown field(s): {', '.join(sorted(map(str, unknown)))}",
                sorted(map(str, unknown))[0],
            )
        missing = [name for name in ("v", "id", "key", "method") if name not in obj]
        if missing:
            raise EnvelopeError(f"envelope is missing field {missing[0]!r}", missing[0])
        v = obj["v"]
        if v != VERSION or isinstance(v, bool):
            raise EnvelopeError(f"unsupported envelope version {v!r} (this library reads 1)", "v")
        msg_id = obj["id"]
        if not isinstance(msg_id, str) or not msg_id:
            raise EnvelopeError("field 'id' must be a non-empty string", "id")
        key = validate_key(obj["key"])
        method = obj["method"]
        if not isinstance(method, str) or method not in METHODS:
            raise EnvelopeError(
                f"field 'method' must be one of {sorted(METHODS)}, got {method!r}", "method"
            )
        headers = obj.get("headers")
        if headers is None:
            headers = {}
        elif not isinstance(headers, dict):
            raise EnvelopeError("field 'headers' must be an object", "headers")
        reply_to = obj.get("reply_to")
        if reply_to is not None and not isinstance(reply_to, str):
            raise EnvelopeError("field 'reply_to' must be a string or null", "reply_to")
        deadline = obj.get("deadline")
        if deadline is not None and not _number(deadline):
            raise EnvelopeError("field 'deadline' must be a number or null", "deadline")
        priority = obj.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 9:
            raise EnvelopeError("field 'priority' must be an int from 0 to 9", "priority")
        sent_at = obj.get("sent_at", 0.0)
        if not _number(sent_at):
            raise EnvelopeError("field 'sent_at' must be a number", "sent_at")
        return cls(
            key, method, obj.get("data"), headers, msg_id, reply_to, deadline, priority, sent_at
        )

    def time_left(self, now: float | None = None) -> float | None:
        """Seconds until the deadline (may be negative), or None without a deadline."""
        if self.deadline is None:
            return None
        return self.deadline - (time.time() if now is None else now)

    def expired(self, now: float | None = None) -> bool:
        """True once the deadline has passed: nobody waits for the reply any more."""
        left = self.time_left(now)
        return left is not None and left <= 0
