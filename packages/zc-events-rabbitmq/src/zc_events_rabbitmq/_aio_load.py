"""Loads the asyncio backends lazily, so sync users never import aiormq."""

from __future__ import annotations

import inspect
import logging
from typing import Any

from zc_events import Dispatcher

__all__ = ["INSTALL_HINT", "async_class", "async_worker", "has_async_handlers", "is_async"]

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


def is_async(func: Any) -> bool:
    """True for an ``async def`` handler (or an object whose ``__call__`` is one)."""
    return func is not None and (
        inspect.iscoroutinefunction(func)
        or inspect.iscoroutinefunction(getattr(func, "__call__", None))  # noqa: B004
    )


def has_async_handlers(dispatcher: Dispatcher) -> bool:
    """True if some key of ``dispatcher`` is served by an ``async def`` handler."""
    keys = dispatcher.keys()
    return any(is_async(dispatcher.handler_for(key)) for key in keys)


def async_worker(dispatcher: Dispatcher) -> Any:
    """The asyncio worker class when ``dispatcher`` has async handlers and aiormq is installed;
    else None (the threaded worker then runs async handlers one at a time per thread)."""
    if not has_async_handlers(dispatcher):
        return None
    try:
        from ._aio_worker import AsyncWorker
    except ImportError as exc:
        if exc.name not in ("aiormq", "pamqp", "yarl"):
            raise
        log.warning(
            "aiormq is not installed, so async handlers run one at a time on each worker "
            "thread; to serve them concurrently on an event loop: %s",
            INSTALL_HINT,
        )
        return None
    return AsyncWorker
