"""The server side of the ``http`` backend: one endpoint, as an ASGI app and as a WSGI app.

Both apps share :class:`Endpoint`, which holds every rule and no I/O:

==========  ===============================================================================
HTTP        meaning
==========  ===============================================================================
200         the handler ran; the body is its Response (the handler's status is inside it)
202         a ``*_no_wait`` message was accepted; the handler runs after the answer
400         the body is not an envelope (the error names the field)
404         no handler for that key here (error type ``NoRouteError``), or another path
405         a method other than POST
410         the request's deadline had passed on arrival: skipped, nobody waits for it
413         the body is larger than ``ZC_EVENTS_MAX_MESSAGE_BYTES``
415         the content type is not ``application/json``
==========  ===============================================================================

Every answer is a JSON Response object; no traceback ever leaves the server in a 4xx.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from zc_events import Dispatcher, Envelope, Response, Settings, get_settings

from ._routes import ENDPOINT

__all__ = ["ASGIApp", "Endpoint", "WSGIApp", "asgi_app", "wsgi_app"]

log = logging.getLogger("zc_events.http")

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status and JSON body."""

    status: int
    body: bytes


def error(status: int, type_: str, message: str) -> Answer:
    """A JSON error answer the client maps to an exception."""
    return Answer(status, Response.error(type_, message, status).encode())


class Endpoint:
    """The rules of ``POST /zc-events``, shared by the ASGI and the WSGI app."""

    def __init__(
        self,
        dispatcher: Dispatcher | None = None,
        *,
        settings: Settings | None = None,
        max_body_bytes: int | None = None,
    ) -> None:
        self.settings = settings if settings is not None else get_settings()
        if dispatcher is None:
            from ._client import HttpBackend

            dispatcher = HttpBackend(settings=self.settings).default_dispatcher()
        self.dispatcher = dispatcher
        self.max_body_bytes = (
            self.settings.max_message_bytes if max_body_bytes is None else int(max_body_bytes)
        )

    @staticmethod
    def is_endpoint(path: str) -> bool:
        """True for ``/zc-events``, below whatever prefix the app is mounted at."""
        return path.rstrip("/").endswith(ENDPOINT)

    def check(self, method: str, content_type: str | None, length: int | None) -> Answer | None:
        """Refuse a request before its body is read; None when it may go on."""
        if method != "POST":
            return error(405, "MethodNotAllowed", f"use POST {ENDPOINT}, not {method}")
        media = (content_type or "").split(";", 1)[0].strip().lower()
        if media != JSON:
            return error(
                415,
                "UnsupportedMediaType",
                f"the body must be a zc-events envelope as {JSON}, got {content_type or 'none'!r}",
            )
        if length is not None and length > self.max_body_bytes:
            return self.too_large(length)
        return None

    def too_large(self, length: int | None = None) -> Answer:
        size = f"{length} bytes" if length is not None else "the body"
        return error(
            413,
            "EnvelopeError",
            f"{size} is over the limit of {self.max_body_bytes} bytes "
            "(ZC_EVENTS_MAX_MESSAGE_BYTES; large payloads travel by reference with the "
            "s3_claim_check middleware)",
        )

    def accept(self, body: bytes) -> Answer | Envelope:
        """Decode and route ``body``: the envelope to dispatch, or the answer that refuses it."""
        try:
            envelope = self.dispatcher.decode(body)
        except Exception as exc:  # EnvelopeError, and whatever a hostile body may provoke
            message = str(exc) if isinstance(exc, ValueError) else type(exc).__name__
            log.warning("refusing an HTTP request that is not an envelope: %s", message)
            return error(400, "EnvelopeError", message)
        if self.dispatcher.skip_expired(envelope):
            return error(410, "RequestTimeout", f"the deadline of {envelope.id} had passed")
        if not self.dispatcher.handles(envelope.key):
            return error(404, "NoRouteError", f"no handler for key {envelope.key!r} here")
        return envelope

    def run(self, envelope: Envelope) -> bytes | None:
        """Dispatch ``envelope``; the encoded reply, or None for a ``*_no_wait`` message."""
        return self.dispatcher.handle_envelope(envelope)

    @staticmethod
    def accepted(envelope: Envelope) -> Answer:
        return Answer(202, b'{"id":"' + envelope.id.encode() + b'"}')


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class ASGIApp:
    """``POST /zc-events`` as an ASGI 3 application (mount it in FastAPI, Starlette, Django).

    ``async def`` handlers are awaited on the server's event loop; sync handlers run on a pool of
    ``concurrency`` threads, or with ``inline=True`` on the event loop itself: no thread hand-off
    (the fastest round trip), but a slow sync handler then stalls every request of the process.
    ``*_no_wait`` handlers run after the 202 answer, and the lifespan shutdown (or
    :meth:`aclose`) waits for them.
    """

    def __init__(self, endpoint: Endpoint, concurrency: int = 32, *, inline: bool = False) -> None:
        self.endpoint = endpoint
        self.concurrency = concurrency
        self.inline = inline
        self._executor: ThreadPoolExecutor | None = None
        self._pending: set[asyncio.Future[Any]] = set()

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                self.concurrency, thread_name_prefix="zc-events-http"
            )
        return self._executor

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            raise ValueError(f"zc-events serves HTTP only, not {kind!r}")
        endpoint = self.endpoint
        if not endpoint.is_endpoint(scope["path"]):
            await self._send(send, error(404, "NotFound", f"zc-events listens on {ENDPOINT}"))
            return
        headers = scope.get("headers", [])
        length_text = _header(headers, b"content-length")
        length = int(length_text) if length_text and length_text.isdigit() else None
        refused = endpoint.check(scope["method"], _header(headers, b"content-type"), length)
        if refused is None:
            body = await self._read(receive)
            outcome = endpoint.too_large() if body is None else endpoint.accept(body)
        else:
            outcome = refused
        if isinstance(outcome, Answer):
            await self._send(send, outcome)
            return
        if outcome.reply_to is None:
            await self._send(send, endpoint.accepted(outcome))
            task = asyncio.ensure_future(self._run(outcome))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            return
        reply = await self._run(outcome)
        if reply is None:  # the deadline passed while it waited for a thread
            await self._send(send, error(410, "RequestTimeout", "the deadline had passed"))
        else:
            await self._send(send, Answer(200, reply))

    async def _run(self, envelope: Envelope) -> bytes | None:
        """Dispatch on this event loop: ``async def`` handlers are awaited here, sync ones run
        on the handler threads."""
        dispatcher = self.endpoint.dispatcher
        if self.inline and not dispatcher.is_async(envelope.key):
            return dispatcher.handle_envelope(envelope)
        return await dispatcher.ahandle_envelope(envelope, executor=self.executor)

    async def _read(self, receive: Any) -> bytes | None:
        """The whole body, or None once it grows past the limit."""
        limit = self.endpoint.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b""
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    async def _send(send: Any, answer: Answer) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    (b"content-type", JSON.encode()),
                    (b"content-length", str(len(answer.body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        """Wait for accepted ``*_no_wait`` work, then stop the handler threads."""
        if self._pending:
            log.info("finishing %d accepted no-wait message(s)", len(self._pending))
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


class WSGIApp:
    """``POST /zc-events`` as a WSGI application (mount it in Django or any WSGI server).

    Waiting requests run on the server's thread; ``*_no_wait`` handlers run on a pool of
    ``concurrency`` threads after the 202 answer (:meth:`close` waits for them).
    """

    def __init__(self, endpoint: Endpoint, concurrency: int = 8) -> None:
        self.endpoint = endpoint
        self.concurrency = concurrency
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        endpoint = self.endpoint
        if not endpoint.is_endpoint(environ.get("PATH_INFO", "")):
            return self._send(
                start_response, error(404, "NotFound", f"zc-events listens on {ENDPOINT}")
            )
        length_text = environ.get("CONTENT_LENGTH") or ""
        length = int(length_text) if length_text.isdigit() else None
        refused = endpoint.check(environ["REQUEST_METHOD"], environ.get("CONTENT_TYPE"), length)
        if refused is not None:
            return self._send(start_response, refused)
        stream = environ["wsgi.input"]
        limit = endpoint.max_body_bytes
        body = stream.read(length) if length is not None else stream.read(limit + 1)
        if len(body) > limit:
            return self._send(start_response, endpoint.too_large())
        outcome = endpoint.accept(body)
        if isinstance(outcome, Answer):
            return self._send(start_response, outcome)
        if outcome.reply_to is None:
            self._pool().submit(endpoint.run, outcome)
            return self._send(start_response, endpoint.accepted(outcome))
        reply = endpoint.run(outcome)
        if reply is None:
            return self._send(
                start_response, error(410, "RequestTimeout", "the deadline had passed")
            )
        return self._send(start_response, Answer(200, reply))

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    self.concurrency, thread_name_prefix="zc-events-http"
                )
            return self._executor

    @staticmethod
    def _send(start_response: Callable[..., Any], answer: Answer) -> list[bytes]:
        start_response(
            f"{answer.status} {_REASONS.get(answer.status, '')}".strip(),
            [("Content-Type", JSON), ("Content-Length", str(len(answer.body)))],
        )
        return [answer.body]

    def close(self) -> None:
        """Wait for accepted ``*_no_wait`` work and stop the pool."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    410: "Gone",
    413: "Content Too Large",
    415: "Unsupported Media Type",
}


def asgi_app(
    dispatcher: Dispatcher | None = None,
    *,
    settings: Settings | None = None,
    max_body_bytes: int | None = None,
    concurrency: int = 32,
    inline: bool = False,
) -> ASGIApp:
    """An ASGI app serving the registered handlers at ``/zc-events``.

    FastAPI/Starlette: ``app.mount("/", zc_events_http.asgi_app())`` (or under a prefix, and
    route to ``<base URL>/prefix``). ``dispatcher`` defaults to the process-wide handlers,
    ``ZC_EVENTS_HANDLERS`` and the server middleware of the settings. ``inline=True`` runs sync
    handlers on the event loop (see :class:`ASGIApp`).
    """
    return ASGIApp(
        Endpoint(dispatcher, settings=settings, max_body_bytes=max_body_bytes),
        concurrency,
        inline=inline,
    )


def wsgi_app(
    dispatcher: Dispatcher | None = None,
    *,
    settings: Settings | None = None,
    max_body_bytes: int | None = None,
    concurrency: int = 8,
) -> WSGIApp:
    """A WSGI app serving the registered handlers at ``/zc-events`` (Django: see the README)."""
    return WSGIApp(
        Endpoint(dispatcher, settings=settings, max_body_bytes=max_body_bytes), concurrency
    )
