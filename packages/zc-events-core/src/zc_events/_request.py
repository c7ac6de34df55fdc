"""Request: what a handler receives."""

from __future__ import annotations

from typing import Any

from ._context import CAUSED_BY_HEADER
from ._envelope import Envelope

__all__ = ["Request"]


class Request:
    """A call as the handler sees it: ``data``, ``headers``, ``method``, ``key`` and ``id``."""

    __slots__ = ("envelope",)

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope

    @property
    def data(self) -> Any:
        """The JSON body sent by the caller."""
        return self.envelope.data

    @property
    def headers(self) -> dict[str, Any]:
        """HTTP-style metadata (``pk``, ``query_string``, ``authorization``, ...)."""
        return self.envelope.headers

    @property
    def method(self) -> str:
        """``GET``, ``POST``, ``PUT``, ``PATCH`` or ``DELETE``."""
        return self.envelope.method

    @property
    def key(self) -> str:
        """The handler key the call was sent to."""
        return self.envelope.key

    @property
    def id(self) -> str:
        """The message id (also the correlation id)."""
        return self.envelope.id

    @property
    def deadline(self) -> float | None:
        """When the caller stops waiting (Unix time in seconds), or None for ``*_no_wait``
        calls. Calls the handler makes inherit it."""
        return self.envelope.deadline

    def time_left(self) -> float | None:
        """Seconds until :attr:`deadline` (negative once passed), or None without one."""
        return self.envelope.time_left()

    @property
    def caused_by(self) -> str | None:
        """The id of the request whose handler made this call, or None."""
        value = self.envelope.headers.get(CAUSED_BY_HEADER)
        return value if isinstance(value, str) else None

    @property
    def wants_reply(self) -> bool:
        """False for ``*_no_wait`` calls."""
        return self.envelope.reply_to is not None

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.key!r} id={self.id}>"
