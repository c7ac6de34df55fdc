"""Middleware hooks on both sides of a call, and the built-in ``hmac_signing``."""

from __future__ import annotations

import hashlib
import hmac
import inspect
from collections.abc import Iterable
from typing import Any

from . import _json
from ._envelope import Envelope
from ._exceptions import ConfigurationError
from ._registry import MIDDLEWARE, load
from ._response import Response
from ._settings import Settings

__all__ = ["HmacSigning", "Middleware", "SignatureError", "build_middleware"]


class Middleware:
    """Base class: override any hook; each returns the (possibly new) envelope or response.

    Client side: :meth:`outgoing_request` before publishing, :meth:`incoming_response` after the
    reply. Server side: :meth:`incoming_request` before the handler, :meth:`outgoing_response`
    after it. An exception raised server-side becomes an error response for the caller.
    """

    def outgoing_request(self, envelope: Envelope) -> Envelope:
        """Client: change the envelope before it is published."""
        return envelope

    def incoming_response(self, envelope: Envelope, response: Response) -> Response:
        """Client: change the response before the caller sees it."""
        return response

    def incoming_request(self, envelope: Envelope) -> Envelope:
        """Server: change the envelope before the handler sees it."""
        return envelope

    def outgoing_response(self, envelope: Envelope, response: Response) -> Response:
        """Server: change the response before it is sent back."""
        return response


def build_middleware(settings: Settings, specs: Iterable[Any] | None = None) -> list[Middleware]:
    """Instantiate middleware from names, dotted paths, classes or instances, in order."""
    options = settings.middleware_options
    out: list[Middleware] = []
    for spec in settings.middleware if specs is None else specs:
        if isinstance(spec, Middleware):
            out.append(spec)
            continue
        name = spec if isinstance(spec, str) else getattr(spec, "__name__", repr(spec))
        cls = load(spec, MIDDLEWARE) if isinstance(spec, str) else spec
        kwargs = options.get(name, {})
        if not isinstance(kwargs, dict):
            raise ConfigurationError(
                f"ZC_EVENTS_MIDDLEWARE_OPTIONS[{name!r}] must be a dict of keyword options"
            )
        if isinstance(cls, type) and "settings" in inspect.signature(cls).parameters:
            kwargs = {"settings": settings, **kwargs}
        try:
            instance = cls(**kwargs) if isinstance(cls, type) else cls
        except TypeError as exc:
            raise ConfigurationError(f"middleware {name!r}: bad options {kwargs!r}: {exc}") from exc
        if not isinstance(instance, Middleware):
            raise ConfigurationError(f"middleware {name!r} is not a zc_events.Middleware")
        out.append(instance)
    return out


class SignatureError(PermissionError):
    """A request carried no signature, or one that does not match."""


class HmacSigning(Middleware):
    """Sign requests with HMAC-SHA256 over key, method, id and data; reject unsigned ones.

    Options: ``secret`` (str, required; the same on every service), ``header`` (default
    ``x-zc-signature``).
    """

    def __init__(self, secret: str | bytes, header: str = "x-zc-signature") -> None:
        if not secret:
            raise ConfigurationError("hmac_signing needs a non-empty 'secret' option")
        self.secret = secret.encode() if isinstance(secret, str) else secret
        self.header = header

    def _digest(self, envelope: Envelope) -> str:
        signed = _json.dumps([envelope.key, envelope.method, envelope.id, envelope.data])
        return hmac.new(self.secret, signed, hashlib.sha256).hexdigest()

    def outgoing_request(self, envelope: Envelope) -> Envelope:
        envelope.headers = {**envelope.headers, self.header: self._digest(envelope)}
        return envelope

    def incoming_request(self, envelope: Envelope) -> Envelope:
        given = envelope.headers.get(self.header)
        if not isinstance(given, str):
            raise SignatureError(f"request {envelope.key!r} is not signed ({self.header} missing)")
        if not hmac.compare_digest(given, self._digest(envelope)):
            raise SignatureError(f"request {envelope.key!r} has a bad signature")
        return envelope
