"""Middleware hooks on both sides of a call, and the built-in ``hmac_signing``."""

from __future__ import annotations

import hashlib
import hmac
import inspect
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from . import _json
from ._envelope import Envelope
from ._exceptions import ConfigurationError, SignatureError
from ._registry import MIDDLEWARE, load
from ._response import Response
from ._settings import Settings

__all__ = [
    "HmacSigning",
    "Middleware",
    "SignatureError",
    "build_middleware",
    "call_hook",
    "call_hook_async",
    "finish_request",
]

log = logging.getLogger("zc_events.signing")


class Middleware:
    """Base class: override any hook; each returns the (possibly new) envelope or response.

    Client side: :meth:`outgoing_request` before publishing, :meth:`incoming_response` after the
    reply. Server side: :meth:`incoming_request` before the handler, :meth:`outgoing_response`
    after it. An exception raised server-side becomes an error response for the caller.

    Async hooks: define ``async def aoutgoing_request(self, envelope)`` (and ``aincoming_response``,
    ``aincoming_request``, ``aoutgoing_response``), or make a hook itself ``async def``.
    :class:`~zc_events.AsyncEventClient` and async workers await them; the sync client and sync
    workers call the sync hook when the class defines one, else run the async one on zc-events'
    background event loop. Sync hooks keep working everywhere.

    Two more hooks, sync only: :meth:`request_finished` (client: once a call has ended, however
    it ended) and :meth:`bind` (the name of the backend of the client or worker using it).
    """

    def bind(self, backend: str) -> None:
        """Called by each client and worker that uses this instance with its backend's name."""

    def outgoing_request(self, envelope: Envelope) -> Envelope:
        """Client: change the envelope before it is published."""
        return envelope

    def incoming_response(self, envelope: Envelope, response: Response) -> Response:
        """Client: change the response before the caller sees it."""
        return response

    def request_finished(
        self, envelope: Envelope, response: Response | None, error: BaseException | None
    ) -> None:
        """Client: the call has ended. ``response`` is the reply (after every
        :meth:`incoming_response`), None for a ``*_no_wait`` call the transport took or a call
        that failed; ``error`` is what the call raised (RequestTimeout, NoRouteError, ...), or
        None. Called in reverse order, like :meth:`incoming_response`; exceptions are logged and
        ignored."""

    def incoming_request(self, envelope: Envelope) -> Envelope:
        """Server: change the envelope before the handler sees it."""
        return envelope

    def outgoing_response(self, envelope: Envelope, response: Response) -> Response:
        """Server: change the response before it is sent back."""
        return response


HOOKS = ("outgoing_request", "incoming_response", "incoming_request", "outgoing_response")


_hook_cache: dict[tuple[type, str, bool], tuple[str, bool]] = {}


def _resolve_hook(cls: type, name: str, for_async: bool) -> tuple[str, bool]:
    """(attribute to call, whether it is a coroutine function) for hook ``name`` of ``cls``.

    The async face prefers ``a<name>``; the sync face prefers a sync ``<name>`` that the class
    overrides, else ``a<name>`` when there is one.
    """
    cache_key = (cls, name, for_async)
    found = _hook_cache.get(cache_key)
    if found is not None:
        return found
    has_async = hasattr(cls, "a" + name)
    fn = getattr(cls, name)
    is_async = inspect.iscoroutinefunction(fn)
    if for_async:
        use_async = has_async
    else:
        use_async = has_async and (is_async or fn is getattr(Middleware, name, None))
    if use_async:
        found = ("a" + name, inspect.iscoroutinefunction(getattr(cls, "a" + name)))
    else:
        found = (name, is_async)
    _hook_cache[cache_key] = found
    return found


def call_hook(mw: Middleware, name: str, *args: Any) -> Any:
    """Call hook ``name`` of ``mw`` from synchronous code (async hooks run on the background
    loop)."""
    attr, is_async = _resolve_hook(type(mw), name, False)
    result = getattr(mw, attr)(*args)
    if is_async:
        from ._aio import run_coroutine

        result = run_coroutine(result)
    return result


async def call_hook_async(mw: Middleware, name: str, *args: Any) -> Any:
    """Call hook ``name`` of ``mw`` from a coroutine, awaiting it when it is async."""
    attr, is_async = _resolve_hook(type(mw), name, True)
    result = getattr(mw, attr)(*args)
    if is_async:
        result = await result
    return result


def finish_request(
    middleware: list[Middleware],
    envelope: Envelope,
    response: Response | None,
    error: BaseException | None,
) -> None:
    """Call every :meth:`Middleware.request_finished` hook, in reverse order, never raising."""
    for mw in reversed(middleware):
        try:
            mw.request_finished(envelope, response, error)
        except Exception:
            logging.getLogger("zc_events").exception(
                "middleware %r failed in request_finished for %r", mw, envelope.key
            )


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
            # Option names only: values may be secrets, and a mistyped name is not recognised.
            given = ", ".join(sorted(k for k in kwargs if k != "settings")) or "none"
            raise ConfigurationError(
                f"middleware {name!r}: bad options (given: {given}): {exc}; fix "
                f"ZC_EVENTS_MIDDLEWARE_OPTIONS[{name!r}]"
            ) from exc
        if not isinstance(instance, Middleware):
            raise ConfigurationError(f"middleware {name!r} is not a zc_events.Middleware")
        out.append(instance)
    return out


_REQUEST = "zc-events/request/1"
_REPLY = "zc-events/reply/1"
_CARRIED_CLAIMS = ("deadline", "sent_at", "priority")


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class HmacSigning(Middleware):
    """Sign every request and reply with HMAC-SHA256 (middleware name ``hmac_signing``).

    The signature covers every envelope field (``v id key method data headers reply_to deadline
    priority sent_at``) except itself, over a canonical JSON form that does not depend on the
    installed JSON library. It travels in the header ``header`` as ``{"kid", "sig", "deadline",
    "sent_at", "priority"}`` (the times and priority are repeated there for the legacy wire,
    which does not carry them). Replies carry ``{"kid", "sig"}`` in their ``signature`` field,
    bound to the request id. The server refuses (error response of type
    :class:`~zc_events.SignatureError`, WARNING log line, handler not called) a request that is
    unsigned, signed with an unknown key or a wrong signature, changed after signing, past its
    signed deadline, or whose id this process already handled within ``replay_window``; the
    client raises :class:`~zc_events.SignatureError` for an unsigned or forged reply.

    Options: ``secret`` (one shared secret, key id ``"default"``) or ``secrets`` (key id →
    secret; the first signs, all verify: add the new key second, then move it first, then
    remove the old one); ``header`` (default ``x-zc-signature``); ``replay_window`` (seconds an
    id is remembered, default 3600; a waiting request is remembered until its deadline if that
    is later); ``replay_cache_size`` (ids remembered at most, default 100000, oldest forgotten
    first). The replay memory is per process: with N worker processes a replay can be handled
    once by each process that did not see the original (see docs/security.md).
    """

    def __init__(
        self,
        secret: str | bytes | None = None,
        *,
        secrets: Mapping[str, str | bytes] | None = None,
        header: str = "x-zc-signature",
        replay_window: float = 3600.0,
        replay_cache_size: int = 100_000,
    ) -> None:
        if (secret is None) == (secrets is None):
            raise ConfigurationError(
                "hmac_signing needs a non-empty 'secret' option or a 'secrets' option "
                "(key id -> secret), not both"
                if secret is not None
                else "hmac_signing needs a non-empty 'secret' option (or 'secrets': key id -> "
                "secret, the first signs)"
            )
        if secrets is None:
            secrets = {"default": secret or ""}
        if not isinstance(secrets, Mapping) or not secrets:
            raise ConfigurationError(
                "hmac_signing option 'secrets' must be a non-empty dict of key id -> secret"
            )
        self.secrets: dict[str, bytes] = {}
        for kid, value in secrets.items():
            if not isinstance(kid, str) or not kid:
                raise ConfigurationError("hmac_signing key ids must be non-empty strings")
            if not isinstance(value, str | bytes) or not value:
                raise ConfigurationError(
                    f"hmac_signing needs a non-empty 'secret' for key id {kid!r}"
                )
            self.secrets[kid] = value.encode() if isinstance(value, str) else bytes(value)
        self.kid = next(iter(self.secrets))
        self._macs = {
            kid: hmac.new(value, digestmod=hashlib.sha256) for kid, value in self.secrets.items()
        }
        if not isinstance(header, str) or not header:
            raise ConfigurationError("hmac_signing option 'header' must be a non-empty string")
        if not _number(replay_window) or replay_window <= 0:
            raise ConfigurationError("hmac_signing option 'replay_window' must be > 0 seconds")
        if not isinstance(replay_cache_size, int) or replay_cache_size <= 0:
            raise ConfigurationError("hmac_signing option 'replay_cache_size' must be an int > 0")
        self.header = header
        self.replay_window = float(replay_window)
        self.replay_cache_size = replay_cache_size
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the secrets
        return f"<HmacSigning kids={list(self.secrets)!r}>"

    # -- the signed forms -----------------------------------------------------------------------
    def _digest(self, kid: str, material: list[Any]) -> str:
        # A copy of the keyed HMAC costs half of hmac.digest(), which sets the key up each time.
        mac = self._macs[kid].copy()
        mac.update(_json.canonical(material))
        return mac.hexdigest()

    def _request_material(
        self, kid: str, envelope: Envelope, headers: dict[str, Any], claims: Mapping[str, Any]
    ) -> list[Any]:
        return [
            _REQUEST,
            kid,
            envelope.v,
            envelope.id,
            envelope.key,
            envelope.method,
            envelope.data,
            headers,
            envelope.reply_to,
            claims["deadline"],
            claims["priority"],
            claims["sent_at"],
        ]

    @staticmethod
    def _reply_material(kid: str, envelope: Envelope, response: Response) -> list[Any]:
        body = response.to_dict()
        body.pop("signature", None)
        return [_REPLY, kid, envelope.id, envelope.key, body]

    # -- client side ------------------------------------------------------------------------------
    def outgoing_request(self, envelope: Envelope) -> Envelope:
        headers = envelope.headers
        if self.header in headers:
            headers = {k: v for k, v in headers.items() if k != self.header}
        claims = {
            "deadline": envelope.deadline,
            "sent_at": envelope.sent_at,
            "priority": envelope.priority,
        }
        try:
            sig = self._digest(
                self.kid, self._request_material(self.kid, envelope, headers, claims)
            )
        except TypeError:  # not JSON: let the transport's encoder name the problem
            return envelope
        envelope.headers = {**headers, self.header: {"kid": self.kid, "sig": sig, **claims}}
        return envelope

    def incoming_response(self, envelope: Envelope, response: Response) -> Response:
        given = response.signature
        what = f"the reply to {envelope.method} {envelope.key!r} (id {envelope.id})"
        if not isinstance(given, dict):
            raise SignatureError(
                f"{what} is not signed: the server does not run hmac_signing, or someone else "
                "answered"
            )
        kid, sig = given.get("kid"), given.get("sig")
        if not isinstance(kid, str) or kid not in self.secrets:
            raise SignatureError(f"{what} is signed with unknown key id {kid!r}")
        if not isinstance(sig, str) or not hmac.compare_digest(
            sig, self._digest(kid, self._reply_material(kid, envelope, response))
        ):
            raise SignatureError(f"{what} has a bad signature (forged or changed in transit)")
        return response

    # -- server side ------------------------------------------------------------------------------
    def _refuse(self, envelope: Envelope, reason: str, kid: object = None) -> SignatureError:
        log.warning(
            "refused %s %r (id %s, key id %r): %s",
            envelope.method,
            envelope.key,
            envelope.id,
            kid,
            reason,
        )
        return SignatureError(f"request {envelope.key!r} (id {envelope.id}) {reason}")

    def incoming_request(self, envelope: Envelope) -> Envelope:
        given = envelope.headers.get(self.header)
        if not isinstance(given, dict):
            raise self._refuse(envelope, f"is not signed ({self.header} header missing)")
        kid, sig = given.get("kid"), given.get("sig")
        if not isinstance(kid, str) or kid not in self.secrets:
            raise self._refuse(envelope, f"is signed with unknown key id {kid!r}", kid)
        deadline, sent_at, priority = (given.get(name) for name in _CARRIED_CLAIMS)
        if (
            not isinstance(sig, str)
            or (deadline is not None and not _number(deadline))
            or not _number(sent_at)
            or priority.__class__ is not int
        ):
            raise self._refuse(envelope, f"has a malformed {self.header} header", kid)
        claims = {"deadline": deadline, "sent_at": sent_at, "priority": priority}
        headers = {k: v for k, v in envelope.headers.items() if k != self.header}
        try:
            expected = self._digest(kid, self._request_material(kid, envelope, headers, claims))
        except TypeError:
            raise self._refuse(envelope, "cannot be put in canonical form", kid) from None
        if not hmac.compare_digest(sig, expected):
            raise self._refuse(envelope, "has a bad signature (forged or changed)", kid)
        for name in _CARRIED_CLAIMS:
            if name in envelope.uncarried:  # the legacy wire: restore the signed value
                setattr(envelope, name, claims[name])
            elif getattr(envelope, name) != claims[name]:
                raise self._refuse(envelope, f"has field {name!r} changed after signing", kid)
        now = time.time()
        if deadline is not None and deadline <= now:
            raise self._refuse(
                envelope, f"is past its signed deadline by {now - deadline:.3f} s (a replay?)", kid
            )
        self._remember(envelope, kid, now, deadline)
        envelope.headers = headers
        return envelope

    def _remember(self, envelope: Envelope, kid: str, now: float, deadline: float | None) -> None:
        until = now + self.replay_window
        if deadline is not None and deadline > until:
            until = deadline
        seen = self._seen
        with self._lock:
            previous = seen.get(envelope.id)
            if previous is not None and previous > now:
                raise self._refuse(envelope, "was already handled by this process (a replay)", kid)
            # Forget expired ids from the old end, then the oldest beyond the size cap.
            while seen:
                oldest_id, oldest_until = next(iter(seen.items()))
                if oldest_until > now and len(seen) < self.replay_cache_size:
                    break
                del seen[oldest_id]
            seen[envelope.id] = until

    def outgoing_response(self, envelope: Envelope, response: Response) -> Response:
        if envelope.reply_to is None:  # nobody reads the reply of a no-wait call
            return response
        try:
            sig = self._digest(self.kid, self._reply_material(self.kid, envelope, response))
        except TypeError as exc:
            log.error("handler for %r returned a value that is not JSON: %s", envelope.key, exc)
            response = Response.error(
                "TypeError",
                f"handler for {envelope.key!r} returned a value that cannot be encoded as JSON: "
                f"{exc}",
            )
            sig = self._digest(self.kid, self._reply_material(self.kid, envelope, response))
        response.signature = {"kid": self.kid, "sig": sig}
        return response
