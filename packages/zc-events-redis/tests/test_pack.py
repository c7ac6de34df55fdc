"""The hand-rolled RESP packer of the per-call paths says what redis-py's packer says."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from zc_events_redis._common import pack


@pytest.mark.parametrize(
    "args",
    [
        ("PING",),
        ("XACK", "zc-events:k:a.b", "svc", b"1795807003344-0"),
        ("RPUSH", "zc-events:reply:" + "a" * 32, b"id\n" + "é".encode() + b"\r\n\x00" * 3000),
        ("BLMPOP", 0.25, 1, "zc-events:reply:x", "LEFT", "COUNT", 100),
        ("BLPOP", "k", 1.0),
        ("EVALSHA", "0" * 40, 1, "zc-events:k:ünïcode", 100_000, b""),
    ],
)
def test_pack_matches_redis_py(args: tuple[Any, ...]) -> None:
    expected = b"".join(redis.Connection().pack_command(*args))
    assert pack(*args) == expected
