"""The endpoint as a Django URL include: ``path("", include("zc_events_http.django"))``.

Serves ``POST <prefix>/zc-events`` with the handlers of the process (``@zc_events.handler``,
``ZC_EVENTS_HANDLERS``, DRF views registered through zc-events-django) and the server middleware
of the settings. CSRF does not apply (the endpoint takes no cookies); authentication is the
envelope's business (``hmac_signing``) or the network's (mutual TLS).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from ._server import Answer, Endpoint, error

__all__ = ["urlpatterns", "view"]

_endpoint: Endpoint | None = None
_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _state() -> tuple[Endpoint, ThreadPoolExecutor]:
    global _endpoint, _pool
    with _lock:
        if _endpoint is None or _pool is None:
            _endpoint = Endpoint()
            _pool = ThreadPoolExecutor(8, thread_name_prefix="zc-events-http")
        return _endpoint, _pool


def _answer(answer: Answer) -> HttpResponse:
    return HttpResponse(answer.body, status=answer.status, content_type="application/json")


@csrf_exempt
def view(request: HttpRequest) -> HttpResponse:
    """``POST /zc-events``: the same rules as the ASGI and WSGI apps."""
    endpoint, pool = _state()
    length_text = request.META.get("CONTENT_LENGTH") or ""
    length = int(length_text) if length_text.isdigit() else None
    refused = endpoint.check(request.method or "", request.META.get("CONTENT_TYPE"), length)
    if refused is not None:
        return _answer(refused)
    # read() rather than .body: the endpoint's own limit applies, not DATA_UPLOAD_MAX_MEMORY_SIZE
    body = request.read(endpoint.max_body_bytes + 1)
    if len(body) > endpoint.max_body_bytes:
        return _answer(endpoint.too_large())
    outcome: Any = endpoint.accept(body)
    if isinstance(outcome, Answer):
        return _answer(outcome)
    if outcome.reply_to is None:
        pool.submit(endpoint.run, outcome)
        return _answer(endpoint.accepted(outcome))
    reply = endpoint.run(outcome)
    if reply is None:
        return _answer(error(410, "RequestTimeout", "the deadline had passed"))
    return _answer(Answer(200, reply))


urlpatterns = [path("zc-events", view, name="zc-events")]
