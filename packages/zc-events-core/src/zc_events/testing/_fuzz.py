"""Hostile message bodies for robustness tests of workers (see :func:`fuzz_bodies`)."""

from __future__ import annotations

import json
import random
from typing import Any

__all__ = ["fuzz_bodies"]

_KEYS = ["v", "id", "key", "method", "data", "headers", "reply_to", "deadline", "priority"]
_ODD: list[Any] = [
    None,
    True,
    0,
    -1,
    2**70,
    1e308,
    -0.0,
    "",
    "GET",
    "x" * 300,
    [],
    {},
    [[]],
    "\x00\u2028",
]


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice(_ODD)
    if kind == 1:
        return rng.randint(-(2**40), 2**40)
    if kind == 2:
        return rng.random() * 10 ** rng.randint(-10, 10)
    if kind == 3:
        return "".join(
            chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0xD7FF)]))
            for _ in range(rng.randrange(12))
        )
    if kind == 4:
        return rng.choice([True, False, None])
    if kind == 5:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {
        str(_value(rng, depth + 1))[:12]: _value(rng, depth + 1) for _ in range(rng.randrange(4))
    }


def _envelope_like(rng: random.Random) -> Any:
    obj = {k: _value(rng) for k in _KEYS if rng.random() < 0.7}
    if rng.random() < 0.5:
        obj.update(v=1, id=f"6f1c2b9e-0000-4000-8000-{rng.randrange(10**12):012d}")
    if rng.random() < 0.3:
        obj["extra"] = 1
    return obj


def _legacy_like(rng: random.Random) -> Any:
    payload = {
        "data": _value(rng),
        "id": rng.choice([_value(rng), "6f1c2b9e-0000-4000-8000-000000000000"]),
        "headers": rng.choice([_value(rng), {}]),
        "response_key": rng.choice([None, _value(rng), "not-a-uuid", "some:other:key"]),
        "_backend": rng.choice([_value(rng), {"method": _value(rng)}, {"method": "GET"}]),
    }
    args = rng.choice([[_value(rng), payload], [_value(rng)], _value(rng), []])
    body = [args, rng.choice([{}, _value(rng)]), rng.choice([{}, _value(rng)])]
    if rng.random() < 0.2:
        return {
            "task": rng.choice(["microservice.event", _value(rng)]),
            "id": _value(rng),
            "args": args,
            "kwargs": _value(rng),
        }
    return body


def fuzz_bodies(count: int = 1000, seed: int = 0) -> list[bytes]:
    """``count`` message bodies no worker should accept, deterministic for ``seed``.

    A mix of random bytes, invalid UTF-8, truncated and deeply nested JSON, JSON of every type,
    envelope-like objects with wrong fields, and legacy (Celery protocol 1 and 2) bodies with
    wrong arguments. A worker must dead-letter or ignore each of them and go on serving.
    """
    rng = random.Random(seed)
    out: list[bytes] = []
    for n in range(count):
        kind = n % 8
        if kind == 0:
            out.append(rng.randbytes(rng.randrange(64)))
        elif kind == 1:
            out.append(b"\xff\xfe" + rng.randbytes(8) + b'{"v":1}')
        elif kind == 2:
            text = json.dumps(_envelope_like(rng)).encode()
            out.append(text[: rng.randrange(1, len(text) + 1)])
        elif kind == 3:
            depth = rng.choice([300, 5000, 100_000])
            out.append(rng.choice([b"[", b'{"a":']) * depth)
        elif kind == 4:
            out.append(json.dumps(_value(rng)).encode())
        elif kind in (5, 6):
            out.append(json.dumps(_envelope_like(rng)).encode())
        else:
            out.append(json.dumps(_legacy_like(rng)).encode())
    return out
