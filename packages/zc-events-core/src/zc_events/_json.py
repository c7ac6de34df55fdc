"""JSON encoding: orjson, then ujson when installed, else the standard library. Never pickle."""

from __future__ import annotations

import json as _stdlib_json
from collections.abc import Callable
from typing import Any

__all__ = ["dumps", "implementation", "loads"]

dumps: Callable[[Any], bytes]
loads: Callable[[bytes | str], Any]

try:  # pragma: no cover - depends on what is installed
    import orjson as _orjson

    _OPTS = _orjson.OPT_NON_STR_KEYS

    def dumps(obj: Any) -> bytes:
        """Encode ``obj`` as compact UTF-8 JSON bytes; raise TypeError if it is not JSON."""
        try:
            return _orjson.dumps(obj, option=_OPTS)
        except _orjson.JSONEncodeError as exc:
            raise TypeError(str(exc)) from exc

    loads = _orjson.loads
    implementation = "orjson"
except ImportError:  # pragma: no cover - depends on what is installed
    _encoder = _stdlib_json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)

    def dumps(obj: Any) -> bytes:
        """Encode ``obj`` as compact UTF-8 JSON bytes; raise TypeError if it is not JSON."""
        try:
            return _encoder.encode(obj).encode("utf-8")
        except ValueError as exc:  # NaN / infinity
            raise TypeError(str(exc)) from exc

    loads = _stdlib_json.loads
    implementation = "json"
