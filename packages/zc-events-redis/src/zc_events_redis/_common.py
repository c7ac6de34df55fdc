"""What the client, the worker and the asyncio client share: options, key names, scripts.

Key layout (``P`` is the ``prefix`` option, default ``zc-events``):

- ``P:k:<key>``: the request stream of one handler key. Each service that handles the key owns
  one consumer group on it, named after the service (``SERVICE_NAME``).
- ``P:dead:<service>``: the dead-letter stream of a service (fields ``stream``, ``entry``,
  ``reason``, ``deliveries``, ``body``).
- ``P:reply:<32 hex digits>``: the reply list of one client process; the worker pushes
  ``<envelope id>\\n<response JSON>`` and the client's reader pops it. A worker only ever writes to
  names of exactly this form, so a message cannot make it write to any other key.
"""

from __future__ import annotations

import re
from typing import Any

from zc_events import ConfigurationError, Settings, mask_secrets

__all__ = [
    "DEFAULT_PREFIX",
    "DEFAULT_URL",
    "PUBLISH_SCRIPT",
    "Names",
    "Options",
    "describe_url",
    "hold_connection",
    "pack",
]

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_PREFIX = "zc-events"
#: The stream entry field holding the envelope JSON.
FIELD = b"e"

#: Publish one envelope: refuse when no consumer group reads the stream (nobody handles the
#: key) or when a group's backlog of unread entries reached ``maxlen`` (trimming would then drop
#: unread messages), else ``XADD ... MAXLEN ~ maxlen``. One round trip, atomic.
#: Returns the entry id, 0 for "no route", or ``{group, lag}`` for "full".
PUBLISH_SCRIPT = """
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok or #groups == 0 then return 0 end
local maxlen = tonumber(ARGV[1])
for _, g in ipairs(groups) do
  for i = 1, #g, 2 do
    if g[i] == 'lag' and g[i + 1] and g[i + 1] >= maxlen then return {g[2], g[i + 1]} end
  end
end
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[2])
"""


def pack(*args: bytes | str | int | float) -> bytes:
    """One Redis command in RESP, the wire format, for a connection's ``send_packed_command``
    (in a list: that method iterates over what it is given).

    The per-call paths pack their commands here: redis-py's packer costs about 2 µs per
    argument, a good part of a round trip on localhost.
    """
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int):
            arg = b"%d" % arg
        elif isinstance(arg, float):
            arg = repr(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def hold_connection(client: Any) -> Any:
    """A connection taken from redis-py ``client``'s pool for good (it connects it), for
    pipelining by hand; ``client.close()`` closes it with the pool."""
    pool = client.connection_pool
    try:
        return pool.get_connection()
    except TypeError:  # redis-py < 5.3 wants a command name
        return pool.get_connection("PING")


def describe_url(url: str) -> str:
    """``url`` with any password masked, for logs and error messages."""
    masked: str = mask_secrets(url)
    return masked


def _int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(
            f"redis backend option {name!r} must be an int >= {minimum}, got {value!r}"
        )
    return value


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(
            f"redis backend option {name!r} must be a positive number of seconds, got {value!r}"
        )
    return float(value)


def _name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value or not value.isprintable() or " " in value:
        raise ConfigurationError(
            f"redis backend option {name!r} must be a non-empty printable string without "
            f"spaces, got {value!r}"
        )
    return value


class Names:
    """Redis key names under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._reply = re.compile(re.escape(prefix) + r":reply:[0-9a-f]{32}\Z")

    def stream(self, key: str) -> str:
        """The request stream of handler ``key``."""
        return f"{self.prefix}:k:{key}"

    def dead(self, service: str) -> str:
        """The dead-letter stream of ``service``."""
        return f"{self.prefix}:dead:{service}"

    def reply(self, token: str) -> str:
        """The reply list of one client process (``token``: 32 hex digits)."""
        return f"{self.prefix}:reply:{token}"

    def is_reply(self, name: object) -> bool:
        """True if ``name`` is a reply list of this prefix (the only keys a reply may go to)."""
        return isinstance(name, str) and self._reply.match(name) is not None


class Options:
    """The validated options of the ``redis`` backend (sync and asyncio alike)."""

    def __init__(
        self,
        settings: Settings,
        *,
        url: str | None = None,
        prefix: str = DEFAULT_PREFIX,
        queue: str | None = None,
        concurrency: int = 4,
        prefetch: int = 10,
        maxlen: int = 100_000,
        block: float = 1.0,
        claim_idle: float = 60.0,
        max_deliveries: int | None = None,
        reply_ttl: float = 60.0,
        client_name: str | None = None,
    ) -> None:
        if url is None:
            url = settings.get("ZC_EVENTS_REDIS_URL", None) or DEFAULT_URL
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigurationError(
                "redis backend option 'url' (or setting ZC_EVENTS_REDIS_URL) must be a "
                f"redis://, rediss:// or unix:// URL, got {describe_url(str(url))!r}"
            )
        self.url = url
        self.prefix = _name("prefix", prefix)
        self.queue = None if queue is None else _name("queue", queue)
        self.concurrency = _int("concurrency", concurrency)
        self.prefetch = _int("prefetch", prefetch)
        self.maxlen = _int("maxlen", maxlen, 100)
        self.block = _seconds("block", block)
        self.claim_idle = _seconds("claim_idle", claim_idle)
        self.max_deliveries = _int(
            "max_deliveries", settings.max_deliveries if max_deliveries is None else max_deliveries
        )
        self.dead_letter_failed_no_wait = settings.dead_letter_failed_no_wait
        self.reply_ttl = _seconds("reply_ttl", reply_ttl)
        self.client_name = None if client_name is None else _name("client_name", client_name)
        self.names = Names(self.prefix)
