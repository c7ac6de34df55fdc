"""Serve Django and DRF views over zc-events.

A :class:`ViewHandler` turns a zc-events :class:`~zc_events.Request` into a real Django
``HttpRequest`` (a ``WSGIRequest`` with a body stream, ``META`` and query string), calls the view
exactly as Django's URL resolver would (so DRF's parsers, authentication, permissions,
throttling and exception handler all run), and maps the rendered HTTP response back to a
:class:`~zc_events.Response`.

Django and DRF are imported lazily, so this module can be imported from ``settings.py``.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

import zc_events

__all__ = ["ViewHandler", "adapt", "response_from_django", "view_handler"]

log = logging.getLogger("zc_events.django")

#: Envelope headers that become HTTP request headers (``META`` keys). Nothing else does: caller
#: claims such as ``user_id`` or ``roles`` reach only ``request.zc_events.headers``.
HTTP_HEADERS = {
    "authorization": "HTTP_AUTHORIZATION",
    "accept": "HTTP_ACCEPT",
    "accept_language": "HTTP_ACCEPT_LANGUAGE",
    "http_host": "HTTP_HOST",
    "host": "HTTP_HOST",
}

#: HTTP status → the error ``type`` reported for an error response that DRF did not render (a
#: plain Django view's empty or HTML body), where there is no error object to pass on.
STATUS_TYPES = {
    400: "BadRequest",
    401: "NotAuthenticated",
    403: "PermissionDenied",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    415: "UnsupportedMediaType",
    429: "Throttled",
}

DETAIL_ACTIONS = {
    "GET": "retrieve",
    "PUT": "update",
    "PATCH": "partial_update",
    "DELETE": "destroy",
}
LIST_ACTIONS = {"GET": "list", "POST": "create"}


def _load(view: Any) -> Any:
    return zc_events.import_string(view) if isinstance(view, str) else view


def _view_class(view: Any) -> type | None:
    """The class behind a view: itself, or the ``cls``/``view_class`` of an ``as_view()``."""
    if isinstance(view, type):
        return view
    cls = getattr(view, "cls", None) or getattr(view, "view_class", None)
    return cls if isinstance(cls, type) else None


class _Route:
    __slots__ = ("kwargs", "view")

    def __init__(self, view: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        self.view = view
        self.kwargs = kwargs


class ViewHandler:
    """A zc-events handler that serves a Django view: a DRF ``APIView`` or ``ViewSet`` class, an
    ``@api_view`` function, any ``as_view()`` result, or a plain Django function view.

    Routing uses the envelope headers. For a ViewSet: with ``pk``, GET/PUT/PATCH/DELETE go to
    retrieve/update/partial_update/destroy; without, GET/POST go to list/create.
    ``related_resource`` calls the ViewSet's extra ``@action`` of that name (``detail`` by whether
    ``pk`` is given) or, on a djangorestframework-jsonapi ViewSet, ``retrieve_related`` with
    ``related_field``; ``relationship`` (with ``pk``) calls ``relationship_view`` with
    ``related_field``, as the old library did. Other views get ``pk`` as a URL keyword when given.

    ``initkwargs`` go to ``as_view()``. ``path`` is the request path the view sees (default
    ``/<key>/[<pk>/]``). Dotted paths are imported on first use, so this can be built in settings.
    """

    def __init__(
        self,
        view: Any,
        *,
        relationship_view: Any = None,
        path: str | None = None,
        **initkwargs: Any,
    ) -> None:
        self._view = view
        self._relationship_view = relationship_view
        self.path = path
        self.initkwargs = initkwargs
        self._cache: dict[Any, Callable[..., Any]] = {}
        self._lock = threading.Lock()
        self._loaded = False

    # -- introspection ---------------------------------------------------------------------
    def _setup(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            from django.views import View

            view = _load(self._view)
            cls = _view_class(view)
            if isinstance(view, type) and not issubclass(view, View):
                raise zc_events.ConfigurationError(
                    f"{view!r} is not a Django view class (a DRF APIView or ViewSet)"
                )
            if not isinstance(view, type) and not callable(view):
                raise zc_events.ConfigurationError(f"{view!r} is not a view")
            self.view = view
            self.view_class = cls
            self.relationship_view = _load(self._relationship_view)
            self.is_viewset = bool(isinstance(view, type) and hasattr(view, "get_extra_actions"))
            parsers = getattr(cls, "parser_classes", ())
            renderers = getattr(cls, "renderer_classes", ())
            self.content_type = _first_json(parsers) or "application/json"
            self.accept = _first_json(renderers) or "application/json"
            self._loaded = True

    @property
    def target(self) -> Any:
        """The view this handler serves (imported if it was a dotted path)."""
        self._setup()
        return self.view

    def _as_view(
        self, key: Any, cls: Any, actions: Mapping[str, str] | None, **initkwargs: Any
    ) -> Any:
        view = self._cache.get(key)
        if view is None:
            kwargs = {**self.initkwargs, **initkwargs}
            view = cls.as_view(actions, **kwargs) if actions is not None else cls.as_view(**kwargs)
            self._cache[key] = view
        return view

    # -- routing ---------------------------------------------------------------------------
    def route(self, request: zc_events.Request) -> _Route | zc_events.Response:
        """The view function and URL keyword arguments for ``request`` (or an error Response)."""
        self._setup()
        headers = request.headers
        raw_pk = headers.get("pk")
        pk = None if raw_pk is None or raw_pk == "" else str(raw_pk)
        relationship = headers.get("relationship")
        related = headers.get("related_resource")
        cls = self.view_class
        lookup = "pk"
        if cls is not None:
            lookup = str(
                getattr(cls, "lookup_url_kwarg", None) or getattr(cls, "lookup_field", "pk")
            )
        if relationship:
            if pk is None:
                return zc_events.Response.error(
                    "BadRequest", "a 'relationship' request needs the 'pk' header", 400
                )
            if self.relationship_view is None:
                return zc_events.Response.error(
                    "NotFound",
                    f"{request.key!r} serves no relationships (no relationship_view)",
                    404,
                )
            view = self._as_view("relationship", self.relationship_view, None)
            return _Route(view, {"pk": pk, "related_field": str(relationship)})
        if not self.is_viewset:
            kwargs: dict[str, Any] = {lookup: pk} if pk is not None else {}
            if related:
                kwargs["related_resource"] = str(related)
            if isinstance(self.view, type):
                return _Route(self._as_view("view", self.view, None), kwargs)
            return _Route(self.view, kwargs)
        detail = pk is not None
        kwargs = {lookup: pk} if pk is not None else {}
        if related:
            for action in self.view.get_extra_actions():
                names = {action.__name__, getattr(action, "url_path", None)}
                if str(related) in names and bool(action.detail) == detail:
                    mapping = dict(action.mapping)
                    view = self._as_view(
                        ("action", action.__name__),
                        self.view,
                        mapping,
                        detail=detail,
                        **action.kwargs,
                    )
                    return _Route(view, kwargs)
            if detail and hasattr(self.view, "retrieve_related"):
                view = self._as_view("related", self.view, {"get": "retrieve_related"}, detail=True)
                return _Route(view, {**kwargs, "related_field": str(related)})
            where = "detail" if detail else "list"
            return zc_events.Response.error(
                "NotFound", f"{request.key!r} has no {where} action {related!r}", 404
            )
        # The route DRF's router would make: its method table, and nothing decided here. A method
        # the ViewSet has no action for reaches DRF's own ``http_method_not_allowed`` through the
        # view's whole stack (authentication, throttling, exception handler, renderer).
        table = DETAIL_ACTIONS if detail else LIST_ACTIONS
        actions = {m.lower(): a for m, a in table.items() if hasattr(self.view, a)}
        if not actions:  # a router makes no such route: Django's URL resolver answers 404
            where = "detail (with a pk)" if detail else "list (without a pk)"
            return zc_events.Response.error(
                "NotFound", f"{request.key!r} has no {where} route: the ViewSet has no action", 404
            )
        return _Route(self._as_view(("crud", detail), self.view, actions, detail=detail), kwargs)

    # -- the request -----------------------------------------------------------------------
    def build_request(self, request: zc_events.Request) -> Any:
        """A ``WSGIRequest`` for ``request``: method, body, query string and HTTP headers."""
        from django.core.handlers.wsgi import WSGIRequest

        self._setup()
        headers = request.headers
        body = b"" if request.data is None else json.dumps(request.data).encode("utf-8")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": self._path(request),
            "QUERY_STRING": _query_string(headers.get("query_string")),
            "SERVER_NAME": _default_host(),
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_TYPE": str(headers.get("content_type") or self.content_type),
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_ACCEPT": self.accept,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multiprocess": True,
            "wsgi.multithread": True,
            "wsgi.run_once": False,
        }
        for name, meta in HTTP_HEADERS.items():
            value = headers.get(name)
            if value is not None and value != "":
                environ[meta] = str(value)
        http_request = WSGIRequest(environ)
        # For authentication classes that choose to look (see zc_events_django.event_request).
        http_request.zc_events = request  # type: ignore[attr-defined]
        return http_request

    def _path(self, request: zc_events.Request) -> str:
        if self.path is not None:
            return self.path
        parts = [request.key]
        for name in ("pk", "relationship", "related_resource"):
            value = request.headers.get(name)
            if value is not None and value != "":
                if name == "relationship":
                    parts.append("relationships")
                parts.append(str(value))
        return "/" + "/".join(parts) + "/"

    # -- the call --------------------------------------------------------------------------
    def __call__(self, request: zc_events.Request) -> zc_events.Response:
        """Serve ``request`` with the view and return its outcome as a Response."""
        from django.core import signals

        route = self.route(request)
        if isinstance(route, zc_events.Response):
            return route
        http_request = self.build_request(request)
        signals.request_started.send(sender=type(self), environ=http_request.META)
        try:
            try:
                http_response = _atomic(route.view)(http_request, **route.kwargs)
            except Exception as exc:
                return _exception_response(exc, http_request, request)
            return response_from_django(http_response, http_request)
        finally:
            signals.request_finished.send(sender=type(self))

    def __repr__(self) -> str:
        return f"<ViewHandler {self._view!r}>"


def view_handler(view: Any, *, relationship_view: Any = None, **options: Any) -> ViewHandler:
    """Serve ``view`` over zc-events (see :class:`ViewHandler`); for ``register()``/settings."""
    return ViewHandler(view, relationship_view=relationship_view, **options)


def adapt(obj: Any) -> ViewHandler | None:
    """HandlerRegistry adapter: a Django view class or ``as_view()`` function → ViewHandler."""
    if isinstance(obj, ViewHandler) or "django" not in sys.modules:
        return None
    from django.views import View

    if isinstance(obj, type):
        return ViewHandler(obj) if issubclass(obj, View) else None
    cls = _view_class(obj)
    if callable(obj) and cls is not None and issubclass(cls, View):
        return ViewHandler(obj)
    return None


# -- helpers -------------------------------------------------------------------------------
def _first_json(classes: Any) -> str | None:
    for item in classes or ():
        media_type = getattr(item, "media_type", "") or ""
        if "json" in media_type:
            return str(media_type)
    return None


def _query_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return urlencode(value, doseq=True)
    return str(value).lstrip("?")


def _default_host() -> str:
    from django.conf import settings

    for host in getattr(settings, "ALLOWED_HOSTS", None) or ():
        if host and host != "*":
            return str(host).lstrip(".")
    return "localhost"


def _atomic(view: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``view`` in a transaction per database with ATOMIC_REQUESTS, as Django does."""
    from django.db import connections, transaction

    non_atomic: set[str] = getattr(view, "_non_atomic_requests", set())
    for alias, settings_dict in connections.settings.items():
        if settings_dict.get("ATOMIC_REQUESTS") and alias not in non_atomic:
            view = transaction.atomic(using=alias)(view)
    return view


def _exception_response(
    exc: Exception, http_request: Any, request: zc_events.Request
) -> zc_events.Response:
    """What Django's handler would answer for an exception the view did not handle."""
    from django.core import signals
    from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
    from django.http import Http404

    if isinstance(exc, Http404):
        return zc_events.Response.error("NotFound", str(exc) or "Not found.", 404)
    if isinstance(exc, PermissionDenied):
        message = str(exc) or "You do not have permission to perform this action."
        return zc_events.Response.error("PermissionDenied", message, 403)
    if isinstance(exc, BadRequest | SuspiciousOperation):
        return zc_events.Response.error(type(exc).__name__, str(exc) or "Bad request.", 400)
    log.error(
        "Internal Server Error: %s %r (id %s)",
        request.method,
        request.key,
        request.id,
        exc_info=exc,
    )
    signals.got_request_exception.send(sender=ViewHandler, request=http_request)
    # The traceback goes to the caller only with ZC_EVENTS_SEND_TRACEBACKS (or DEBUG when unset).
    return zc_events.Response.from_exception(
        exc, status=500, trace=zc_events.get_settings().send_tracebacks
    )


def response_from_django(http_response: Any, http_request: Any = None) -> zc_events.Response:
    """Map a Django/DRF response: ``data`` = the rendered JSON under 400, else ``errors``.

    ``errors`` are the view's error objects, unchanged: a JSON:API document's ``errors``, a JSON
    list, or ``[body]`` for another JSON object (DRF's ``{"detail": ...}``). Only a body with no
    error object (empty, text, HTML) gets zc-events' own ``{"type", "message"}``.
    """
    if callable(getattr(http_response, "render", None)) and not getattr(
        http_response, "is_rendered", True
    ):
        http_response.render()
    status = int(http_response.status_code)
    if getattr(http_response, "streaming", False):
        content = b"".join(http_response.streaming_content)
    else:
        content = http_response.content
    content_type = http_response.get("Content-Type", "") or ""
    body: Any = None
    if content:
        if "json" in content_type:
            try:
                body = json.loads(content)
            except ValueError:
                body = content.decode(http_response.charset or "utf-8", "replace")
        else:
            body = content.decode(http_response.charset or "utf-8", "replace")
    if status < 400:
        return zc_events.Response(body, False, None, status)
    errors = _drf_errors(body)
    if errors is None:
        authorized = bool(http_request is not None and http_request.META.get("HTTP_AUTHORIZATION"))
        errors = [_status_error(body, status, authorized)]
    return zc_events.Response(None, True, errors, status)


def _drf_errors(body: Any) -> list[dict[str, Any]] | None:
    """The error objects of a rendered DRF error body, unchanged; None if it has none.

    - a JSON:API document ``{"errors": [...]}`` → its ``errors`` list;
    - a JSON list (e.g. ``ValidationError(["a", "b"])`` with DRF's own handler) → the list;
    - any other JSON object (DRF's ``{"detail": ...}``, a serializer's field → messages) →
      ``[body]``.

    Nothing is added, renamed or removed, on any wire: a caller compares ``response.errors``
    with what the same request over HTTP rendered. Only a list item that is not an object
    (``"a"``) becomes ``{"detail": "a"}``, as a zc-events error must be an object.
    """
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        items: list[Any] = body["errors"]
    elif isinstance(body, list) and body:
        items = body
    elif isinstance(body, dict) and body:
        return [body]
    else:
        return None
    return [item if isinstance(item, dict) else {"detail": item} for item in items]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def _status_error(body: Any, status: int, authorized: bool) -> dict[str, Any]:
    """zc-events' own error for a status DRF did not render (no error object to pass on)."""
    if status == 401 and authorized:
        kind = "AuthenticationFailed"
    elif status >= 500:
        kind = "ServerError"
    else:
        kind = STATUS_TYPES.get(status, "HTTPError")
    message = _reason(status)
    if isinstance(body, str) and body and len(body) <= 500 and "<" not in body:
        message = body.strip()
    return {"type": kind, "message": message}
