"""The exceptions zc-events raises.

    ZcEventsError
    ├── ConfigurationError        a setting is missing, malformed or unknown
    │   └── BackendNotFound       no installed backend has that name
    ├── EnvelopeError (ValueError) a message or call argument is malformed
    ├── RequestTimeout (TimeoutError) nobody answered before the deadline
    ├── NoRouteError              no service handles that key
    ├── PublishError              the transport did not take the message
    ├── ReplyError                the message was sent, but its reply could not be read
    ├── RemoteError               raised by Response.raise_for_errors()
    └── SignatureError (PermissionError) a message or reply is unsigned, forged or replayed

A waiting verb returns a Response for remote failures and raises only for local ones.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._response import Response

__all__ = [
    "BackendNotFound",
    "ConfigurationError",
    "EnvelopeError",
    "NoRouteError",
    "PublishError",
    "RemoteError",
    "ReplyError",
    "RequestTimeout",
    "SignatureError",
    "ZcEventsError",
]


class ZcEventsError(Exception):
    """Root of every exception zc-events raises."""


class ConfigurationError(ZcEventsError):
    """A setting is missing, malformed or unknown; the message names it."""


class BackendNotFound(ConfigurationError):
    """No installed backend is registered under the requested name."""


class EnvelopeError(ZcEventsError, ValueError):
    """A message (or the arguments to build one) is malformed.

    ``field`` names the offending envelope field when there is one.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RequestTimeout(ZcEventsError, TimeoutError):
    """No reply arrived before the request's deadline."""

    def __init__(self, message: str, key: str | None = None, timeout: float | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.timeout = timeout


class NoRouteError(ZcEventsError):
    """No service handles the key, so the message could not be delivered."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class PublishError(ZcEventsError):
    """The transport did not accept the message (broker down, nack, closed channel)."""


class ReplyError(ZcEventsError):
    """The request was published, but its reply could not be read (for example the Redis
    that holds legacy replies is down). Unlike PublishError, the request may have been handled:
    retry only what is safe to run twice."""


class RemoteError(ZcEventsError):
    """The remote handler failed; raised by :meth:`Response.raise_for_errors`.

    The message describes the first error object with whatever members it has: its ``type``
    (else ``title``, ``code``, or the response's HTTP-like status) and its ``message`` (else
    ``detail``, else the whole object), so error objects passed on as a service rendered them
    (DRF's ``{"detail": ...}``, JSON:API's ``{"detail", "status", "source"}``) read well too.
    """

    def __init__(self, response: Response) -> None:
        self.response = response
        self.errors: list[dict[str, Any]] = list(response.errors)
        first = self.errors[0] if self.errors else {}
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(f"{_error_kind(first, response.status)}: {_error_text(first)}{more}")


def _error_kind(error: dict[str, Any], status: int | None) -> str:
    for name in ("type", "title", "code"):
        if isinstance(error.get(name), str) and error[name]:
            return str(error[name])
    return f"HTTP {status}" if status is not None else "Error"


def _error_text(error: dict[str, Any]) -> str:
    for name in ("message", "detail"):
        value = error.get(name)
        if isinstance(value, str):
            return value
        if value is not None:
            return json.dumps(value, ensure_ascii=False, default=str)
    rest = {k: v for k, v in error.items() if k not in ("type", "title", "code", "trace")}
    return json.dumps(rest, ensure_ascii=False, default=str) if rest else ""


class SignatureError(ZcEventsError, PermissionError):
    """A request or reply carries no signature, a bad one, or was already handled (a replay).

    Raised by the client when a reply fails verification; a server refuses such a request with
    an error response of this type instead of running the handler.
    """
