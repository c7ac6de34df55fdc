"""The exceptions zc-events raises.

    ZcEventsError
    ├── ConfigurationError        a setting is missing, malformed or unknown
    │   └── BackendNotFound       no installed backend has that name
    ├── EnvelopeError (ValueError) a message or call argument is malformed
    ├── RequestTimeout (TimeoutError) nobody answered before the deadline
    ├── NoRouteError              no service handles that key
    ├── PublishError              the transport did not take the message
    └── RemoteError               raised by Response.raise_for_errors()

A waiting verb returns a Response for remote failures and raises only for local ones.
"""

from __future__ import annotations

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
    "RequestTimeout",
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


class RemoteError(ZcEventsError):
    """The remote handler failed; raised by :meth:`Response.raise_for_errors`."""

    def __init__(self, response: Response) -> None:
        self.response = response
        self.errors: list[dict[str, Any]] = list(response.errors)
        first = self.errors[0] if self.errors else {}
        kind = first.get("type", "Error")
        message = first.get("message", first.get("detail", ""))
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(f"{kind}: {message}{more}")
