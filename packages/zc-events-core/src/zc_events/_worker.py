"""Serving: import handler modules, then consume with a backend until SIGTERM/SIGINT."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
from collections.abc import Iterable
from pathlib import Path
from types import FrameType
from typing import Any

from ._backend import Backend, create_backend
from ._exceptions import ConfigurationError
from ._settings import Settings

__all__ = ["HealthFile", "serve"]

log = logging.getLogger("zc_events.worker")


def import_modules(modules: Iterable[str]) -> None:
    """Import handler modules so their ``@handler`` registrations run."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigurationError(f"cannot import handler module {name!r}: {exc}") from exc


#: Seconds between touches of ``--health-file``.
HEALTH_FILE_INTERVAL = 5.0


class HealthFile:
    """Touches ``path`` every ``interval`` seconds while ``backend.is_consuming()`` (from a
    daemon thread), and removes it on :meth:`stop`: a liveness probe checks its age."""

    def __init__(self, path: str | os.PathLike[str], backend: Backend, interval: float) -> None:
        self.path = Path(path)
        self.backend = backend
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zc-events-health-file", daemon=True)

    def start(self) -> None:
        """Start touching (the first touch waits until the backend consumes)."""
        self._thread.start()

    def _run(self) -> None:
        wait = min(self.interval, 0.2)  # touch soon after consuming starts
        while not self._stop.wait(wait):
            try:
                if self.backend.is_consuming():
                    self.path.touch()
                    wait = self.interval
                else:
                    wait = min(self.interval, 0.2)
            except Exception as exc:  # a full disk must not kill the worker; the file goes stale
                log.warning("cannot touch the health file %s: %s", self.path, exc)
                wait = self.interval

    def stop(self) -> None:
        """Stop touching and remove the file."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.path.unlink(missing_ok=True)


def serve(
    backend: str | Backend | None = None,
    modules: Iterable[str] = (),
    *,
    settings: Settings | None = None,
    install_signal_handlers: bool = True,
    health_file: str | os.PathLike[str] | None = None,
    health_interval: float = HEALTH_FILE_INTERVAL,
    **options: Any,
) -> None:
    """Serve the registered handlers until SIGTERM or SIGINT, then finish in-flight messages.

    ``backend`` is a name (default ``ZC_EVENTS_BACKEND``) or an instance; ``options`` go to the
    backend. With ``health_file``, that file is touched every ``health_interval`` seconds while
    the worker consumes and removed when it stops. Raises ConfigurationError when a module
    cannot be imported or nothing is handled.
    """
    if settings is None:
        from ._api import get_settings

        settings = get_settings()
    import_modules(modules)
    instance = (
        backend if isinstance(backend, Backend) else create_backend(backend, settings, **options)
    )
    dispatcher = instance.default_dispatcher()
    if not dispatcher.handler_keys():
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
    log.info("serving %s on backend %r", ", ".join(dispatcher.handler_keys()), instance.name)
    probe = None if health_file is None else HealthFile(health_file, instance, health_interval)
    try:
        if probe is not None:
            probe.start()
        instance.serve(dispatcher)
    finally:
        if probe is not None:
            probe.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        instance.close()
