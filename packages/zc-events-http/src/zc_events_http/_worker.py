"""``zc-events worker --backend http``: the ASGI app on an embedded uvicorn server."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from zc_events import ConfigurationError, Dispatcher

from ._routes import ENDPOINT
from ._server import ASGIApp, Endpoint

if TYPE_CHECKING:
    from ._client import HttpBackend

__all__ = ["SERVER_OPTIONS", "parse_bind", "serve"]

log = logging.getLogger("zc_events.http.worker")

SERVER_OPTIONS = frozenset(
    {
        "bind",
        "concurrency",
        "inline",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_ca_certs",
        "max_body_bytes",
    }
)
DEFAULT_BIND = "127.0.0.1:8000"


def parse_bind(text: object) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8000`` for IPv6) as ``(host, port)``."""
    if not isinstance(text, str) or ":" not in text:
        raise ConfigurationError(f"bind address must look like HOST:PORT, got {text!r}")
    host, _, port_text = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigurationError(f"bind address must look like HOST:PORT, got {text!r}")
    return host, int(port_text)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"backend 'http' option {name!r} must be an int >= 1, got {value!r}"
        )
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigurationError(
            f"backend 'http' option {name!r} must be true or false, got {value!r}"
        )
    return value


def serve(backend: HttpBackend, dispatcher: Dispatcher) -> None:
    """Serve ``dispatcher`` until ``backend.stop()``; in-flight requests and accepted no-wait
    messages finish first."""
    try:
        import uvicorn
    except ImportError:
        raise ConfigurationError(
            "the http worker runs on uvicorn, which is not installed: "
            "pip install 'zc-events-http[server]'"
        ) from None
    options = backend.server_options
    settings = backend.settings
    host, port = parse_bind(
        options.get("bind") or settings.get("ZC_EVENTS_HTTP_BIND", DEFAULT_BIND)
    )
    concurrency = _positive_int("concurrency", options.get("concurrency", 32))
    app = ASGIApp(
        Endpoint(dispatcher, settings=settings, max_body_bytes=options.get("max_body_bytes")),
        concurrency,
        inline=_flag("inline", options.get("inline", False)),
    )
    tls: dict[str, Any] = {}
    if options.get("ssl_certfile"):
        tls = {"ssl_certfile": options["ssl_certfile"], "ssl_keyfile": options.get("ssl_keyfile")}
        if options.get("ssl_ca_certs"):
            import ssl

            tls.update(ssl_ca_certs=options["ssl_ca_certs"], ssl_cert_reqs=ssl.CERT_REQUIRED)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_config=None,  # the worker's logging, not uvicorn's own set-up
        access_log=False,
        server_header=False,
        **tls,
    )
    scheme = "https" if tls else "http"

    def ready() -> None:
        log.info(
            "consuming %s at %s://%s:%d%s with %d handler thread(s)",
            ", ".join(dispatcher.keys()),
            scheme,
            host,
            port,
            ENDPOINT,
            concurrency,
        )

    uvicorn_log = logging.getLogger("uvicorn.error")
    if uvicorn_log.level == logging.NOTSET:  # uvicorn logs its own start-up at INFO
        uvicorn_log.setLevel(logging.WARNING)
    server = _server(config, ready)
    backend._server = server
    if backend.stopping.is_set():
        return
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind (and logs why)
        server.started = False
    if not server.started:
        raise ConfigurationError(
            f"the http worker could not listen on {host}:{port} (is the address in use?)"
        )
    log.info("stopped serving at %s://%s:%d", scheme, host, port)


def _server(config: Any, ready: Callable[[], None]) -> Any:
    """uvicorn's server without its own signal handling (the zc-events worker owns SIGTERM and
    calls ``backend.stop()``, which sets ``should_exit``), calling ``ready`` once it listens."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                ready()

    return Server(config)
