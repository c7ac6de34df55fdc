"""Serving: import handler modules, then consume with a backend until SIGTERM/SIGINT."""

from __future__ import annotations

import importlib
import logging
import signal
import threading
from collections.abc import Iterable
from types import FrameType
from typing import Any

from ._backend import Backend, create_backend
from ._exceptions import ConfigurationError
from ._settings import Settings

__all__ = ["serve"]

log = logging.getLogger("zc_events.worker")


def import_modules(modules: Iterable[str]) -> None:
    """Import handler modules so their ``@handler`` registrations run."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigurationError(f"cannot import handler module {name!r}: {exc}") from exc


def serve(
    backend: str | Backend | None = None,
    modules: Iterable[str] = (),
    *,
    settings: Settings | None = None,
    install_signal_handlers: bool = True,
    **options: Any,
) -> None:
    """Serve the registered handlers until SIGTERM or SIGINT, then finish in-flight messages.

    ``backend`` is a name (default ``ZC_EVENTS_BACKEND``) or an instance; ``options`` go to the
    backend. Raises ConfigurationError when a module cannot be imported or nothing is handled.
    """
    if settings is None:
        from ._api import get_settings

        settings = get_settings()
    import_modules(modules)
    instance = (
        backend if isinstance(backend, Backend) else create_backend(backend, settings, **options)
    )
    dispatcher = instance.default_dispatcher()
    if not dispatcher.keys():
        raise ConfigurationError(
            "no handlers are registered: pass the modules that define them "
            "(zc-events worker myservice.handlers) or set ZC_EVENTS_HANDLERS"
        )
    previous: dict[signal.Signals, Any] = {}
    if install_signal_handlers and threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("received signal %d: stopping after in-flight messages", signum)
            instance.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    log.info("serving %s on backend %r", ", ".join(dispatcher.keys()), instance.name)
    try:
        instance.serve(dispatcher)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        instance.close()
