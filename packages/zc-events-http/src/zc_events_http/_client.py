"""The client side of the ``http`` backend: POST the envelope, read the reply from the body.

HTTP status is the transport's outcome, never the handler's: 200 carries the handler's
Response (whose own ``status`` is the handler's), 202 says a ``*_no_wait`` message was accepted,
and the 4xx answers of :mod:`zc_events_http._server` map to the exceptions of a waiting verb.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Any

import httpx

from zc_events import (
    Backend,
    ConfigurationError,
    Envelope,
    EnvelopeError,
    NoRouteError,
    PublishError,
    RequestTimeout,
    Response,
    Settings,
    batch_error,
    new_id,
)

from ._routes import Routes

__all__ = ["HttpBackend"]

#: Envelope headers also sent as HTTP headers, so proxies and meshes can trace the call.
TRACE_HEADERS = ("traceparent", "tracestate")
CONTENT_TYPE = "application/json"


def _has_h2() -> bool:
    try:
        import h2  # noqa: F401
    except ImportError:
        return False
    return True


class HttpOptions:
    """The client options shared by the sync and the async backend."""

    def __init__(
        self,
        settings: Settings,
        *,
        routes: Any = None,
        verify: bool | str = True,
        cert: str | Sequence[str] | None = None,
        http2: bool | None = None,
        max_connections: int = 100,
        connect_timeout: float = 5.0,
    ) -> None:
        source = "backend option 'routes'"
        if routes is None:
            routes, source = settings.get_dict("ZC_EVENTS_HTTP_ROUTES"), "ZC_EVENTS_HTTP_ROUTES"
        self.routes = Routes(routes, source=source)
        if not isinstance(verify, bool | str):
            raise ConfigurationError(
                f"backend 'http' option 'verify' must be true, false or a CA bundle path, "
                f"got {verify!r}"
            )
        self.verify = verify
        if cert is not None and not isinstance(cert, str):
            if not (isinstance(cert, Sequence) and len(cert) == 2):
                raise ConfigurationError(
                    "backend 'http' option 'cert' must be a path or [certfile, keyfile]"
                )
            cert = (str(cert[0]), str(cert[1]))
        self.cert: Any = cert
        if http2 and not _has_h2():
            raise ConfigurationError(
                "backend 'http' option http2=True needs the h2 package: "
                "pip install 'zc-events-http[http2]'"
            )
        self.http2 = _has_h2() if http2 is None else bool(http2)
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise ConfigurationError("backend 'http' option 'max_connections' must be an int")
        if max_connections < 1:
            raise ConfigurationError("backend 'http' option 'max_connections' must be >= 1")
        self.limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self.connect_timeout = float(connect_timeout)

    def ssl_context(self) -> ssl.SSLContext | bool:
        """What httpx verifies with: False, or a context with the CA and client certificate."""
        if self.verify is False:
            return False
        try:
            if isinstance(self.verify, str):
                context = ssl.create_default_context(cafile=self.verify)
            else:
                context = ssl.create_default_context()
            if self.cert is not None:
                certfile, keyfile = (self.cert, None) if isinstance(self.cert, str) else self.cert
                context.load_cert_chain(certfile, keyfile)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"backend 'http': cannot load the TLS files (verify={self.verify!r}, "
                f"cert={self.cert!r}): {exc}"
            ) from exc
        return context

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "verify": self.ssl_context(),
            "http2": self.http2,
            "limits": self.limits,
            "headers": {"content-type": CONTENT_TYPE, "accept": CONTENT_TYPE},
        }

    def timeout(self, seconds: float) -> httpx.Timeout:
        return httpx.Timeout(seconds, connect=min(seconds, self.connect_timeout))


def prepare(envelope: Envelope, wait: bool) -> tuple[bytes, dict[str, str]]:
    """The request body and extra HTTP headers for ``envelope``.

    The server answers in the HTTP response when ``reply_to`` is set (the client sets a fresh id
    before middleware signs the envelope) and with 202 when it is null.
    """
    if wait and envelope.reply_to is None:  # a hand-built envelope given to request()
        envelope.reply_to = new_id()
    elif not wait:
        envelope.reply_to = None
    headers = {
        name: value
        for name in TRACE_HEADERS
        if isinstance(value := envelope.headers.get(name), str)
    }
    return envelope.encode(), headers


def _server_error(content: bytes) -> tuple[str, str]:
    """``(type, message)`` of a JSON error answer, or ``('', text)`` when it is not ours."""
    try:
        errors = Response.decode(content).errors
    except EnvelopeError:
        return "", content[:200].decode("utf-8", "replace")
    if errors:
        first = errors[0]
        return str(first.get("type", "")), str(first.get("message", ""))
    return "", ""


def interpret(status: int, content: bytes, envelope: Envelope, url: str) -> Response | None:
    """Turn an HTTP answer into the Response (200), None (202), or the matching exception."""
    if status == 200:
        return Response.decode(content)
    if status == 202:
        return None
    kind, message = _server_error(content)
    key = envelope.key
    if status == 404 and kind == "NoRouteError":
        raise NoRouteError(f"the service at {url} does not handle {key!r}: {message}", key)
    if status == 410:
        raise RequestTimeout(
            f"the service at {url} skipped {key!r}: its deadline had passed on arrival", key
        )
    if status == 413:
        raise EnvelopeError(
            f"the service at {url} refused the message for {key!r} as too large: {message} "
            "(large payloads travel by reference with the s3_claim_check middleware)",
            "data",
        )
    what = f"{kind}: {message}" if kind else message
    raise PublishError(f"the service at {url} refused {key!r} with HTTP {status}: {what}")


def transport_error(exc: httpx.HTTPError, envelope: Envelope, url: str, wait: float) -> Exception:
    """The zc-events exception for an httpx failure."""
    key = envelope.key
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return PublishError(f"cannot connect to {url} to send {key!r}: {exc or type(exc).__name__}")
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeout(f"no reply to {key!r} from {url} within {wait:g} s", key, wait)
    return PublishError(
        f"the connection to {url} failed while sending {key!r} "
        f"({type(exc).__name__}: {exc}); the handler may or may not have run"
    )


class HttpBackend(Backend):
    """Envelopes over HTTP(S): ``POST <base URL>/zc-events`` with the envelope as the body.

    Options: ``routes`` (key pattern → base URL; default ``ZC_EVENTS_HTTP_ROUTES``),
    ``verify`` (TLS verification: True, False or a CA bundle path), ``cert`` (client certificate:
    a path or ``[certfile, keyfile]``), ``http2`` (default: on when ``h2`` is installed),
    ``max_connections`` (kept-alive connections per client, default 100), ``connect_timeout``
    (default 5 s). Server side: ``bind`` (``HOST:PORT``, default ``ZC_EVENTS_HTTP_BIND`` or
    ``127.0.0.1:8000``), ``concurrency`` (threads for sync handlers), ``ssl_certfile``,
    ``ssl_keyfile``, ``ssl_ca_certs`` (require client certificates signed by that CA).

    ``*_no_wait`` returns once the server accepted the message (HTTP 202); it is not durable: a
    server that dies before running the handler loses it.
    """

    name = "http"

    def __init__(self, *, settings: Settings | None = None, **options: Any) -> None:
        from ._worker import SERVER_OPTIONS

        server = {k: options.pop(k) for k in list(options) if k in SERVER_OPTIONS}
        client = {k: options.pop(k) for k in list(options) if k in _CLIENT_OPTIONS}
        super().__init__(settings=settings, **options)
        self.server_options = server
        self.options = HttpOptions(self.settings, **client)
        self._client: httpx.Client | None = None
        self._server: Any = None

    @classmethod
    def async_backend_class(cls) -> Any:
        from ._aio import AsyncHttpBackend

        return AsyncHttpBackend

    @property
    def client(self) -> httpx.Client:
        """The pooled httpx client (made on first use)."""
        if self._client is None:
            self._client = httpx.Client(**self.options.client_kwargs())
        return self._client

    def _post(self, envelope: Envelope, wait: float, expect_reply: bool) -> Response | None:
        url = self.options.routes.url_for(envelope.key)
        body, headers = prepare(envelope, expect_reply)
        self.check_size(envelope, body)
        try:
            answer = self.client.post(
                url, content=body, headers=headers, timeout=self.options.timeout(wait)
            )
        except httpx.HTTPError as exc:
            raise transport_error(exc, envelope, url, wait) from exc
        return interpret(answer.status_code, answer.content, envelope, url)

    def request(self, envelope: Envelope, timeout: float) -> Response:
        """POST ``envelope`` and return the handler's Response."""
        left = envelope.time_left()
        wait = timeout if left is None else max(min(timeout, left), 0.001)
        response = self._post(envelope, wait, True)
        if response is None:
            raise PublishError(f"the service accepted {envelope.key!r} without answering it")
        return response

    def send(self, envelope: Envelope) -> None:
        """POST a ``*_no_wait`` message; return once the server accepted it (202)."""
        if self._post(envelope, self.settings.timeout, False) is not None:
            raise PublishError(f"the service answered {envelope.key!r} as if a reply was due")

    def send_many(self, envelopes: Sequence[Envelope]) -> None:
        """POST several no-wait messages over the pooled connections, in parallel."""
        if len(envelopes) <= 1:
            super().send_many(envelopes)
            return
        from concurrent.futures import ThreadPoolExecutor

        failed: list[tuple[Envelope, BaseException]] = []
        workers = min(len(envelopes), 16, self.options.limits.max_connections or 16)
        with ThreadPoolExecutor(workers, thread_name_prefix="zc-events-http-batch") as pool:
            for envelope, future in [(e, pool.submit(self.send, e)) for e in envelopes]:
                exc = future.exception()
                if exc is not None:
                    failed.append((envelope, exc))
        if failed:
            raise batch_error(failed, len(envelopes))

    def serve(self, dispatcher: Any = None) -> None:
        """Serve the handlers over HTTP on ``bind`` with uvicorn until :meth:`stop`."""
        from ._worker import serve

        serve(self, dispatcher if dispatcher is not None else self.default_dispatcher())

    def stop(self) -> None:
        super().stop()
        if self._server is not None:
            self._server.should_exit = True

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


_CLIENT_OPTIONS = frozenset(
    {"routes", "verify", "cert", "http2", "max_connections", "connect_timeout"}
)
