"""The asyncio side of the ``http`` backend: the same wire over ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from zc_events import AsyncBackend, Envelope, PublishError, Response, Settings

from ._client import HttpBackend, interpret, prepare, transport_error

__all__ = ["AsyncHttpBackend"]


class AsyncHttpBackend(AsyncBackend):
    """Envelopes over HTTP(S) from asyncio: one pooled ``httpx.AsyncClient`` per event loop,
    shared by every task, so many calls run at once over a few kept-alive connections.

    Takes the options of :class:`~zc_events_http.HttpBackend`.
    """

    name = "http"

    def __init__(self, *, settings: Settings | None = None, **options: Any) -> None:
        # The sync backend validates the options and reads the settings; no connection is made.
        self.sync = HttpBackend(settings=settings, **options)
        super().__init__(settings=self.sync.settings)
        self.options = self.sync.options
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The pooled client of the running event loop (made on first use)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            # A client is bound to the loop it was made on (tests run a loop per test).
            self._client = httpx.AsyncClient(**self.options.client_kwargs())
            self._loop = loop
        return self._client

    async def _post(self, envelope: Envelope, wait: float, expect_reply: bool) -> Response | None:
        url = self.options.routes.url_for(envelope.key)
        body, headers = prepare(envelope, expect_reply)
        self.sync.check_size(envelope, body)
        try:
            answer = await self.client.post(
                url, content=body, headers=headers, timeout=self.options.timeout(wait)
            )
        except httpx.HTTPError as exc:
            raise transport_error(exc, envelope, url, wait) from exc
        return interpret(answer.status_code, answer.content, envelope, url)

    async def request(self, envelope: Envelope, timeout: float) -> Response:
        """POST ``envelope`` and return the handler's Response."""
        left = envelope.time_left()
        wait = timeout if left is None else max(min(timeout, left), 0.001)
        response = await self._post(envelope, wait, True)
        if response is None:
            raise PublishError(f"the service accepted {envelope.key!r} without answering it")
        return response

    async def send(self, envelope: Envelope) -> None:
        """POST a ``*_no_wait`` message; return once the server accepted it (202)."""
        if await self._post(envelope, self.settings.timeout, False) is not None:
            raise PublishError(f"the service answered {envelope.key!r} as if a reply was due")

    async def aclose(self) -> None:
        """Close the pooled connections."""
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.aclose()
