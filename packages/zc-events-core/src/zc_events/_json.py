"""JSON encoding: orjson, else ujson, when installed; else the standard library. Never pickle.

The one JSON-library choice of every package: exported as ``zc_events.json_dumps`` and
``zc_events.json_loads``.
"""

from __future__ import annotations

import json as _stdlib_json
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any

__all__ = ["MAX_DEPTH", "canonical", "check_depth", "dumps", "implementation", "loads"]

#: Deepest JSON nesting any decoder here accepts; deeper input is refused before parsing, so a
#: hostile ``[[[[…`` is a clean error instead of a RecursionError (or a stack overflow).
MAX_DEPTH = 200

_stdlib_encoder = _stdlib_json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False
)


def _stdlib_dumps(obj: Any) -> bytes:
    try:
        return _stdlib_encoder.encode(obj).encode("utf-8")
    except ValueError as exc:  # NaN / infinity
        raise TypeError(str(exc)) from exc


def _pick() -> tuple[str, Callable[[Any], bytes], Callable[[bytes | str], Any]]:
    try:
        import orjson

        option = orjson.OPT_NON_STR_KEYS

        def orjson_dumps(obj: Any) -> bytes:
            try:
                encoded: bytes = orjson.dumps(obj, option=option)
                return encoded
            except orjson.JSONEncodeError as exc:
                raise TypeError(str(exc)) from exc

        return "orjson", orjson_dumps, orjson.loads
    except ImportError:
        pass
    try:
        import ujson

        def ujson_dumps(obj: Any) -> bytes:
            try:
                text: str = ujson.dumps(obj, ensure_ascii=False, escape_forward_slashes=False)
            except OverflowError as exc:
                raise TypeError(str(exc)) from exc
            return text.encode("utf-8")

        return "ujson", ujson_dumps, ujson.loads
    except ImportError:
        pass
    return "json", _stdlib_dumps, _stdlib_json.loads


implementation, dumps, loads = _pick()
dumps.__doc__ = "Encode ``obj`` as compact UTF-8 JSON bytes; raise TypeError if it is not JSON."


def _not_json(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_canonical_encoder = _stdlib_json.JSONEncoder(
    ensure_ascii=True, separators=(",", ":"), sort_keys=True, allow_nan=False
)
# The standard library's C encoder, built once (JSONEncoder.encode builds it on every call, which
# costs as much as encoding a small message). No circular-reference check: a circular value
# raises RecursionError, and is then handled as any value the encoder refuses.
_c_make_encoder = getattr(_stdlib_json.encoder, "c_make_encoder", None)
_canonical_chunks: Callable[[Any, int], Any] | None = (
    _c_make_encoder(
        None,
        _not_json,
        _stdlib_json.encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        True,
        False,
        False,
    )
    if _c_make_encoder is not None
    else None
)


def _canonical_text(obj: Any) -> str:
    if _canonical_chunks is not None:
        return "".join(_canonical_chunks(obj, 0))
    return _canonical_encoder.encode(obj)  # pragma: no cover - CPython has the C encoder


def canonical(obj: Any) -> bytes:
    """One byte form of a JSON value, whichever JSON library is installed (used for signatures).

    Keys sorted, no whitespace, every non-ASCII character escaped, floats as ``repr(float)``
    (``1e-07``): always the standard library's encoder, never orjson or ujson, whose float and
    escape output differ. A value the standard library cannot encode (a datetime orjson
    accepts, mixed key types) is first taken through the installed library and back, so the
    form is that of what the receiver decodes. Raises TypeError if it is not JSON at all.
    """
    try:
        text = _canonical_text(obj)
    except (TypeError, ValueError, RecursionError):
        try:
            text = _canonical_text(loads(dumps(obj)))
        except (ValueError, RecursionError) as exc:  # NaN / infinity / circular reference
            raise TypeError(str(exc)) from exc
    return text.encode("ascii")


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
for _b in b"[{":
    _STEP[_b] = 1
for _b in b"]}":
    _STEP[_b] = -1


def check_depth(raw: bytes | str, limit: int = MAX_DEPTH) -> None:
    """Raise ValueError if the JSON text ``raw`` nests arrays/objects deeper than ``limit``.

    Cheap: when the text has no more than ``limit`` opening brackets at all (nearly every
    message), it returns after two ``count`` calls; otherwise strings are skipped and the
    brackets counted in C.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= limit:
        return
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if brackets and max(accumulate(map(_STEP.__getitem__, brackets))) > limit:
        raise ValueError(f"JSON nested deeper than {limit} levels")
