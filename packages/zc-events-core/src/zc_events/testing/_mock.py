"""EventsMock: canned responses per method and key, in the spirit of ``responses``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import _api
from .._backend import Backend
from .._client import EventClient
from .._envelope import Envelope
from .._request import Request
from .._response import Response

__all__ = ["Call", "EventsMock", "UnexpectedCall"]

_ANY: Any = object()


class UnexpectedCall(AssertionError):
    """A call was made that no registered response matches."""


@dataclass
class Call:
    """One recorded call: the envelope sent and the Response given (None for ``*_no_wait``)."""

    envelope: Envelope
    response: Response | None

    @property
    def key(self) -> str:
        return self.envelope.key

    @property
    def method(self) -> str:
        return self.envelope.method

    @property
    def data(self) -> Any:
        return self.envelope.data

    @property
    def headers(self) -> dict[str, Any]:
        return self.envelope.headers


@dataclass
class _Rule:
    method: str
    key: str
    data: Any
    responder: Callable[[Request], Response]
    times: int | None
    fired: int = 0
    calls: list[Call] = field(default_factory=list)

    def matches(self, envelope: Envelope) -> bool:
        if self.method != envelope.method or self.key != envelope.key:
            return False
        if self.data is not _ANY and self.data != envelope.data:
            return False
        return self.times is None or self.fired < self.times


class EventsMock(Backend):
    """A backend that answers from registered responses and records every call.

    Use it as a context manager (it becomes the default client's backend) or pass it to
    ``EventClient(backend=mock)``::

        with EventsMock() as mock:
            mock.add('GET', 'add', data={'answer': 2})
            assert zc_events.get('add', data={'x': 1, 'y': 1}).data == {'answer': 2}
        assert mock.calls[0].data == {'x': 1, 'y': 1}

    A call nothing matches raises :class:`UnexpectedCall`; leaving the ``with`` block with a
    registered response never fired fails too, unless ``assert_all_called=False``.
    """

    name = "mock"

    def __init__(self, *, assert_all_called: bool = True, **options: Any) -> None:
        super().__init__(**options)
        self.assert_all_called = assert_all_called
        self.calls: list[Call] = []
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._saved: EventClient | None = None

    def add(
        self,
        method: str,
        key: str,
        data: Any = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        status: int | None = None,
        response: Response | None = None,
        callback: Callable[[Request], Any] | None = None,
        exception: BaseException | None = None,
        match_data: Any = _ANY,
        times: int | None = None,
    ) -> None:
        """Answer ``method`` calls to ``key``.

        With ``data``/``errors``/``status``, or a ready ``response``, or ``callback(request)``
        whose return value (or exception) becomes the response, or ``exception`` raised to the
        caller (e.g. ``RequestTimeout``). ``match_data`` restricts the rule to calls with that
        data; ``times`` limits how often it answers.
        """
        method = method.upper()
        if exception is not None:
            exc = exception

            def responder(request: Request) -> Response:
                raise exc

        elif callback is not None:
            cb = callback

            def responder(request: Request) -> Response:
                try:
                    result = cb(request)
                except Exception as error:
                    return Response.from_exception(error)
                return result if isinstance(result, Response) else Response(result)

        else:
            ready = response if response is not None else Response(data, None, errors, status)

            def responder(request: Request) -> Response:
                return Response.decode(ready.encode())

        with self._lock:
            self._rules.append(_Rule(method, key, match_data, responder, times))

    def _answer(self, envelope: Envelope, wait: bool) -> Response | None:
        # Encode and decode as a transport would, so non-JSON data fails here too.
        envelope = Envelope.decode(envelope.encode())
        with self._lock:
            rule = next((r for r in self._rules if r.matches(envelope)), None)
            if rule is None:
                registered = ", ".join(f"{r.method} {r.key!r}" for r in self._rules) or "none"
                raise UnexpectedCall(
                    f"unexpected call {envelope.method} {envelope.key!r} with data "
                    f"{envelope.data!r}; registered: {registered}"
                )
            rule.fired += 1
        response = rule.responder(Request(envelope))
        call = Call(envelope, response if wait else None)
        with self._lock:
            rule.calls.append(call)
            self.calls.append(call)
        return response

    def request(self, envelope: Envelope, timeout: float) -> Response:
        response = self._answer(envelope, wait=True)
        assert response is not None
        return response

    def send(self, envelope: Envelope) -> None:
        self._answer(envelope, wait=False)

    def calls_to(self, key: str, method: str | None = None) -> list[Call]:
        """Recorded calls to ``key`` (and ``method``, when given)."""
        return [
            c for c in self.calls if c.key == key and (method is None or c.method == method.upper())
        ]

    def assert_called(self, method: str, key: str, times: int | None = None) -> None:
        """Fail unless ``method`` ``key`` was called (exactly ``times`` times, when given)."""
        n = len(self.calls_to(key, method))
        if (times is None and n == 0) or (times is not None and n != times):
            expected = "at least once" if times is None else f"{times} time(s)"
            raise AssertionError(f"expected {method.upper()} {key!r} {expected}, got {n}")

    def unfired(self) -> list[str]:
        """Registered responses that were never used."""
        return [f"{r.method} {r.key!r}" for r in self._rules if r.fired == 0]

    def reset_calls(self) -> None:
        """Forget recorded calls and registered responses."""
        with self._lock:
            self.calls.clear()
            self._rules.clear()

    def __enter__(self) -> EventsMock:
        with _api._lock:
            self._saved = _api._client
            _api._client = EventClient(self, settings=_api.get_settings())
        return self

    def __exit__(self, *exc_info: object) -> None:
        with _api._lock:
            _api._client = self._saved
            self._saved = None
        if exc_info[0] is None and self.assert_all_called:
            unfired = self.unfired()
            if unfired:
                raise AssertionError(f"registered responses never called: {', '.join(unfired)}")
