"""The HTTP transport for zc-events: the same verbs, no broker in the path.

Client: ``ZC_EVENTS_BACKEND=http`` and ``ZC_EVENTS_HTTP_ROUTES={"orders.*": "https://orders"}``;
each call is ``POST <base URL>/zc-events`` with the envelope as the JSON body and the handler's
Response as the reply. Server: :func:`asgi_app` / :func:`wsgi_app` to mount anywhere, or
``zc-events worker --backend http --bind HOST:PORT MODULE...`` (uvicorn).
"""

from ._aio import AsyncHttpBackend
from ._client import HttpBackend
from ._routes import ENDPOINT, Routes
from ._server import ASGIApp, Endpoint, WSGIApp, asgi_app, wsgi_app

__version__ = "1.0.0"

__all__ = [
    "ENDPOINT",
    "ASGIApp",
    "AsyncHttpBackend",
    "Endpoint",
    "HttpBackend",
    "Routes",
    "WSGIApp",
    "asgi_app",
    "wsgi_app",
]
