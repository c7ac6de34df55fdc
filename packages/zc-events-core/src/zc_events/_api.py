"""Module-level verbs over a lazily built default client, and configure()/reset()."""

from __future__ import annotations

import threading
from typing import Any

from . import _registry
from ._client import EventClient
from ._handlers import handlers
from ._response import Response
from ._settings import Settings, global_settings, normalise_options

__all__ = [
    "call",
    "call_no_wait",
    "configure",
    "default_client",
    "delete",
    "delete_no_wait",
    "get",
    "get_no_wait",
    "get_settings",
    "patch",
    "patch_no_wait",
    "post",
    "post_no_wait",
    "put",
    "put_no_wait",
    "reset",
]

_lock = threading.Lock()
_settings = global_settings()
_client: EventClient | None = None


def get_settings() -> Settings:
    """The process-wide settings (configure() overrides, then the other sources)."""
    return _settings


def configure(**options: Any) -> None:
    """Set settings for this process and rebuild the default client.

    Short names: ``backend``, ``backend_options``, ``handlers``, ``timeout``, ``middleware``,
    ``middleware_options``, ``service_name``; any other setting by its upper-case name
    (``configure(EVENTS_EXCHANGE='x')``). Raises ConfigurationError for unknown names.
    """
    set_overrides(options)
    # Fail now, not on the first call, when the backend or middleware is misconfigured.
    default_client()


def set_overrides(options: dict[str, Any]) -> None:
    """configure() without building the client now: the next module-level call builds it."""
    global _client
    normalised = normalise_options(options)
    with _lock:
        _settings.overrides.update(normalised)
        old, _client = _client, None
    if old is not None:
        old.close()


def reset(*, handlers_too: bool = False) -> None:
    """Forget configure() settings and the default client (for tests).

    With ``handlers_too=True`` also forget handlers registered with ``@zc_events.handler``.
    """
    global _client
    with _lock:
        _settings.overrides.clear()
        old, _client = _client, None
    if old is not None:
        old.close()
    _registry.clear_cache()
    if handlers_too:
        handlers.clear()


def default_client() -> EventClient:
    """The client the module-level verbs use, built from settings on first use."""
    global _client
    client = _client
    if client is None:
        with _lock:
            if _client is None:
                _client = EventClient(settings=_settings)
            client = _client
    return client


def get(
    key: str,
    data: Any = None,
    headers: dict[str, Any] | None = None,
    *,
    timeout: float | None = None,
    priority: int | None = None,
) -> Response:
    """GET ``key`` with the default client and wait for the Response."""
    return default_client().request("GET", key, data, headers, timeout=timeout, priority=priority)


def post(
    key: str,
    data: Any = None,
    headers: dict[str, Any] | None = None,
    *,
    timeout: float | None = None,
    priority: int | None = None,
) -> Response:
    """POST to ``key`` with the default client and wait for the Response."""
    return default_client().request("POST", key, data, headers, timeout=timeout, priority=priority)


def put(
    key: str,
    data: Any = None,
    headers: dict[str, Any] | None = None,
    *,
    timeout: float | None = None,
    priority: int | None = None,
) -> Response:
    """PUT to ``key`` with the default client and wait for the Response."""
    return default_client().request("PUT", key, data, headers, timeout=timeout, priority=priority)


def patch(
    key: str,
    data: Any = None,
    headers: dict[str, Any] | None = None,
    *,
    timeout: float | None = None,
    priority: int | None = None,
) -> Response:
    """PATCH ``key`` with the default client and wait for the Response."""
    return default_client().request("PATCH", key, data, headers, timeout=timeout, priority=priority)


def delete(
    key: str,
    data: Any = None,
    headers: dict[str, Any] | None = None,
    *,
    timeout: float | None = None,
    priority: int | None = None,
) -> Response:
    """DELETE ``key`` with the default client and wait for the Response."""
    return default_client().request(
        "DELETE", key, data, headers, timeout=timeout, priority=priority
    )


call = post


def get_no_wait(
    key: str,
    data: Any = None,
    headers: dict[str, Any] | None = None,
    *,
    priority: int | None = None,
) -> str:
    """GET ``key`` without waiting; returns the message id."""
    return default_client().request_no_wait("GET", key, data, headers, priority=priority)


def post_no_wait(
    key: str,
    data: Any = None,
    headers: dict[str, Any] | None = None,
    *,
    priority: int | None = None,
) -> str:
    """POST to ``key`` without waiting; returns the message id."""
    return default_client().request_no_wait("POST", key, data, headers, priority=priority)


def put_no_wait(
    key: str,
    data: Any = None,
    headers: dict[str, Any] | None = None,
    *,
    priority: int | None = None,
) -> str:
    """PUT to ``key`` without waiting; returns the message id."""
    return default_client().request_no_wait("PUT", key, data, headers, priority=priority)


def patch_no_wait(
    key: str,
    data: Any = None,
    headers: dict[str, Any] | None = None,
    *,
    priority: int | None = None,
) -> str:
    """PATCH ``key`` without waiting; returns the message id."""
    return default_client().request_no_wait("PATCH", key, data, headers, priority=priority)


def delete_no_wait(
    key: str,
    data: Any = None,
    headers: dict[str, Any] | None = None,
    *,
    priority: int | None = None,
) -> str:
    """DELETE ``key`` without waiting; returns the message id."""
    return default_client().request_no_wait("DELETE", key, data, headers, priority=priority)


call_no_wait = post_no_wait
