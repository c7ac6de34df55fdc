"""JSON encoding: orjson, else ujson, when installed; else the standard library. Never pickle."""

from __future__ import annotations

import json as _stdlib_json
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "implementation", "loads"]

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
