"""The Redis side of the zc_events 0.4 wire: pushing a reply and waiting for one.

A reply is ``RPUSH <response_key> <bytes>`` + ``EXPIRE <response_key> 60`` (one MULTI/EXEC); the
caller reads it with ``BLPOP``. The functions take any redis-py client (or anything with the same
``pipeline`` and ``blpop`` methods); redis itself is not imported here. The bytes are built and
read by :mod:`zc_events.legacy`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._exceptions import ReplyError, RequestTimeout
from .legacy import RESPONSE_TTL

__all__ = ["PUSH_BACKOFF", "push_reply", "push_reply_with_retry", "wait_reply"]

log = logging.getLogger("zc_events.legacy")

#: Pauses (seconds) between attempts to push a reply when Redis fails: 4 attempts in about 2 s.
PUSH_BACKOFF: tuple[float, ...] = (0.1, 0.4, 1.5)
#: Longest single BLPOP while waiting: stays under redis-py 8's default 5 s socket timeout.
_MAX_BLPOP_WAIT = 2.0


def push_reply(redis_client: Any, response_key: str, body: bytes, ttl: int = RESPONSE_TTL) -> None:
    """``RPUSH response_key body`` + ``EXPIRE response_key ttl`` in one MULTI/EXEC."""
    pipe = redis_client.pipeline(transaction=True)
    pipe.rpush(response_key, body)
    pipe.expire(response_key, ttl)
    pipe.execute()


def push_reply_with_retry(
    get_client: Callable[[], Any],
    response_key: str,
    body: bytes,
    *,
    key: str,
    backoff: Sequence[float] = PUSH_BACKOFF,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Push a reply, retrying with ``backoff`` pauses while Redis fails; never raises for that.

    ``get_client()`` returns the redis-py client (asked again on each attempt, so a per-process
    client can be rebuilt). Logs a WARNING per failed attempt and one ERROR when
    every attempt failed; returns whether the reply was pushed. The handler is never run again:
    only the push is retried.
    """
    attempts = len(backoff) + 1
    for attempt in range(1, attempts + 1):
        try:
            push_reply(get_client(), response_key, body)
            return True
        except Exception as exc:
            if attempt == attempts:
                log.error(
                    "could not push the reply to %r (response key %s) to Redis after %d "
                    "attempts; the caller will time out: %s: %s",
                    key,
                    response_key,
                    attempts,
                    type(exc).__name__,
                    exc,
                )
                return False
            pause = backoff[attempt - 1]
            log.warning(
                "pushing the reply to %r to Redis failed (%s: %s); attempt %d of %d in %.1f s",
                key,
                type(exc).__name__,
                exc,
                attempt + 1,
                attempts,
                pause,
            )
            sleep(pause)
    return False  # pragma: no cover - the loop always returns


def _blpop_chunk(redis_client: Any) -> float:
    """Longest BLPOP that cannot trip the client's own socket timeout."""
    chunk = _MAX_BLPOP_WAIT
    try:
        socket_timeout = redis_client.connection_pool.connection_kwargs.get("socket_timeout")
    except AttributeError:
        socket_timeout = None
    if isinstance(socket_timeout, int | float) and socket_timeout > 0:
        chunk = min(chunk, socket_timeout / 2)
    return max(chunk, 0.01)


def _describe_redis(redis_client: Any) -> str:
    """``Redis at host:port/db`` for a redis-py client (never its password)."""
    try:
        kwargs = redis_client.connection_pool.connection_kwargs
    except AttributeError:
        return "Redis"
    if "path" in kwargs:
        return f"Redis at unix://{kwargs['path']}"
    return f"Redis at {kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


def wait_reply(redis_client: Any, response_key: str, timeout: float, *, key: str) -> bytes:
    """Wait up to ``timeout`` seconds for the reply pushed to ``response_key``; return its bytes.

    Waits with short BLPOPs so that a client with a socket timeout (redis-py 8 defaults to 5 s)
    still waits the full ``timeout``. Raises :class:`RequestTimeout` naming ``key``, and
    :class:`ReplyError` naming the Redis server when Redis cannot be read (the request was
    published, so this is not a PublishError).
    """
    deadline = time.monotonic() + timeout
    chunk = _blpop_chunk(redis_client)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        # BLPOP 0 would block forever: never ask for less than 10 ms.
        wait = max(min(left, chunk), 0.01)
        try:
            item = redis_client.blpop([response_key], timeout=round(wait, 3))
        except Exception as exc:
            # redis.exceptions.TimeoutError (a socket timeout): the connection was dropped and is
            # reopened by the next command, so keep waiting until our own deadline.
            if type(exc).__name__ != "TimeoutError":
                raise ReplyError(
                    f"the request {key!r} was published, but its reply cannot be read from the "
                    f"reply store, {_describe_redis(redis_client)}: {exc} (check EVENTS_REDIS_URL "
                    "or the backend option 'redis_url')"
                ) from exc
            continue
        if item:
            value = item[1]
            return value.encode("utf-8") if isinstance(value, str) else bytes(value)
    raise RequestTimeout(
        f"no reply to {key!r} within {timeout:g} s (legacy Redis reply list {response_key!r})",
        key,
        timeout,
    )
