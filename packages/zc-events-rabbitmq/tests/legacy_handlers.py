"""Handlers named as in the legacy captures (``add``, ``some_event``, ``send_email``), for worker
subprocesses.

Each call is also recorded in the Redis list named by ``LEGACY_CALLS`` so tests can see
fire-and-forget calls and events.
"""

from __future__ import annotations

import json
import os
from typing import Any

import redis

import zc_events

_redis = redis.Redis.from_url(os.environ.get("LEGACY_REDIS_URL", "redis://127.0.0.1:6379/0"))
_calls = os.environ.get("LEGACY_CALLS", "zc-events-test-legacy-calls")


def _record(request: zc_events.Request) -> None:
    entry = {"key": request.key, "method": request.method, "data": request.data}
    _redis.rpush(_calls, json.dumps(entry))
    _redis.expire(_calls, 300)


@zc_events.handler("add")
def add(request: zc_events.Request) -> Any:
    _record(request)
    return request.data["x"] + request.data["y"]


@zc_events.handler("some_event")
def some_event(request: zc_events.Request) -> None:
    _record(request)


@zc_events.handler("send_email")
def send_email(request: zc_events.Request) -> None:
    """What an email service migrated to zc-events serves (legacy notification ``send_email``)."""
    _record(request)
