"""The request being served: a context variable the Dispatcher sets around each handler call.

Calls made while it is set (a handler calling another service) inherit its deadline, so no
nested call outlives its caller, and carry its id in the ``x-zc-events-caused-by`` header.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import TYPE_CHECKING

from ._exceptions import RequestTimeout

if TYPE_CHECKING:
    from ._envelope import Envelope
    from ._request import Request

__all__ = ["CAUSED_BY_HEADER", "current_request", "inherit_timeout"]

#: The envelope header naming the id of the request whose handler made the call.
CAUSED_BY_HEADER = "x-zc-events-caused-by"

#: The envelope of the request whose handler is running in this context, or None.
serving: ContextVar[Envelope | None] = ContextVar("zc_events_serving", default=None)


def current_request() -> Request | None:
    """The :class:`Request` whose handler is running (in this thread or task), or None."""
    envelope = serving.get()
    if envelope is None:
        return None
    from ._request import Request

    return Request(envelope)


def inherit_timeout(timeout: float) -> float:
    """``timeout`` capped to what is left of the deadline of the request being served.

    Raises :class:`RequestTimeout` when that deadline has already passed: the caller's caller
    has given up, so the call is not sent.
    """
    envelope = serving.get()
    if envelope is None or envelope.deadline is None:
        return timeout
    left = envelope.deadline - time.time()
    if left <= 0:
        raise RequestTimeout(
            f"call not sent: the deadline of the request being served ({envelope.method} "
            f"{envelope.key!r}, id {envelope.id}) passed {-left:.3f} s ago",
            None,
            timeout,
        )
    return left if left < timeout else timeout
