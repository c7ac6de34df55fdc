"""Loads the asyncio backends lazily, so sync users never import aiormq."""

from __future__ import annotations

import logging
from typing import Any

from zc_events import Dispatcher

__all__ = ["INSTALL_HINT", "async_class", "has_async_handlers"]

log = logging.getLogger("zc_events.rabbitmq")

INSTALL_HINT = "pip install 'zc-events-rabbitmq[async]'"
_warned: set[str] = set()


def async_class(name: str) -> Any:
    """The native asyncio backend class for ``name``, or None when aiormq is not installed
    (AsyncEventClient then runs the sync backend on threads, and a warning says what to install).
    """
    try:
        from . import _aio
    except ImportError as exc:
        if exc.name not in ("aiormq", "pamqp", "yarl"):
            raise
        if name not in _warned:
            _warned.add(name)
            log.warning(
                "aiormq is not installed, so AsyncEventClient runs the %s backend on threads; "
                "for the native asyncio backend: %s",
                name,
                INSTALL_HINT,
            )
        return None
    return _aio.AsyncRabbitMQBackend if name == "rabbitmq" else _aio.AsyncLegacyRabbitMQBackend


def has_async_handlers(dispatcher: Dispatcher) -> bool:
    """True if some key of ``dispatcher`` is served by an ``async def`` handler."""
    keys = dispatcher.keys()
    return any(dispatcher.is_async(key) for key in keys)
