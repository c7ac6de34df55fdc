"""Response: what a waiting verb returns (wire form: docs/protocol.md, section 2)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

from . import _json
from ._exceptions import EnvelopeError, RemoteError

__all__ = ["Response", "encode_reply", "error_from_exception"]

log = logging.getLogger("zc_events")


def error_from_exception(exc: BaseException, *, trace: bool = False) -> dict[str, Any]:
    """Describe an exception as a wire error: ``{type, message}``, plus ``trace`` (the formatted
    traceback) when ``trace`` is true (the ``ZC_EVENTS_SEND_TRACEBACKS`` setting)."""
    error = {"type": type(exc).__name__, "message": str(exc)}
    if trace:
        error["trace"] = "".join(traceback.format_exception(exc))
    return error


class Response:
    """The outcome of a call: ``data``, ``has_errors``, ``errors`` and an optional ``status``.

    ``signature`` is set on replies signed by ``hmac_signing`` (on the wire: a ``signature``
    field that readers without signing ignore).
    """

    __slots__ = ("data", "errors", "has_errors", "signature", "status")

    def __init__(
        self,
        data: Any = None,
        has_errors: bool | None = None,
        errors: list[dict[str, Any]] | None = None,
        status: int | None = None,
    ) -> None:
        self.data = data
        self.errors: list[dict[str, Any]] = list(errors) if errors else []
        self.has_errors: bool = bool(self.errors) if has_errors is None else bool(has_errors)
        self.status = status
        self.signature: dict[str, Any] | None = None

    @classmethod
    def from_exception(
        cls, exc: BaseException, status: int | None = None, *, trace: bool = False
    ) -> Response:
        """An error response describing ``exc`` (with its traceback only when ``trace``)."""
        return cls(None, True, [error_from_exception(exc, trace=trace)], status)

    @classmethod
    def error(cls, type_: str, message: str, status: int | None = None, **extra: Any) -> Response:
        """An error response with one error of the given type and message."""
        return cls(None, True, [{"type": type_, "message": message, **extra}], status)

    def raise_for_errors(self) -> Response:
        """Raise :class:`RemoteError` if the remote side reported errors; else return self."""
        if self.has_errors:
            raise RemoteError(self)
        return self

    @property
    def ok(self) -> bool:
        """True when there are no errors."""
        return not self.has_errors

    def to_dict(self) -> dict[str, Any]:
        """The wire form as a dict."""
        out: dict[str, Any] = {
            "data": self.data,
            "has_errors": self.has_errors,
            "errors": self.errors,
        }
        if self.status is not None:
            out["status"] = self.status
        if self.signature is not None:
            out["signature"] = self.signature
        return out

    def encode(self) -> bytes:
        """The wire form as JSON bytes; raises TypeError when ``data`` is not JSON."""
        return _json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, obj: object) -> Response:
        """Validate a decoded wire object and build the response."""
        if not isinstance(obj, dict):
            raise EnvelopeError(f"response must be a JSON object, got {type(obj).__name__}")
        errors = obj.get("errors") or []
        if not isinstance(errors, list) or not all(isinstance(e, dict) for e in errors):
            raise EnvelopeError("response field 'errors' must be a list of objects", "errors")
        has_errors = obj.get("has_errors", bool(errors))
        if not isinstance(has_errors, bool):
            raise EnvelopeError("response field 'has_errors' must be a boolean", "has_errors")
        status = obj.get("status")
        if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
            raise EnvelopeError("response field 'status' must be an int", "status")
        response = cls(obj.get("data"), has_errors, errors, status)
        signature = obj.get("signature")
        if signature is not None:
            if not isinstance(signature, dict):
                raise EnvelopeError("response field 'signature' must be an object", "signature")
            response.signature = signature
        return response

    @classmethod
    def decode(cls, raw: bytes | str) -> Response:
        """Parse and validate wire bytes."""
        try:
            _json.check_depth(raw)
            obj = _json.loads(raw)
        except (ValueError, TypeError, RecursionError) as exc:
            raise EnvelopeError(f"response is not valid JSON: {exc}") from exc
        return cls.from_dict(obj)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Response):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self.has_errors:
            return f"<Response errors={self.errors!r}>"
        return f"<Response data={self.data!r}>"


def encode_reply(
    response: Response,
    key: str | None,
    dumps: Callable[[Any], bytes] | None = None,
    to_dict: Callable[[Response], dict[str, Any]] | None = None,
) -> bytes:
    """Encode ``response`` for the wire: ``dumps(to_dict(response))`` (default: the native JSON
    encoder and :meth:`Response.to_dict`).

    The one place where a handler result that is not JSON becomes a ``TypeError`` error
    response naming the handler ``key`` (logged at ERROR), on every transport.
    """
    encode = dumps if dumps is not None else _json.dumps
    as_dict = to_dict if to_dict is not None else Response.to_dict
    try:
        return encode(as_dict(response))
    except TypeError as exc:
        handler = f"handler for {key!r}" if key else "handler"
        log.error("%s returned a value that is not JSON: %s", handler, exc)
        error = Response.error(
            "TypeError", f"{handler} returned a value that cannot be encoded as JSON: {exc}"
        )
        return encode(as_dict(error))
