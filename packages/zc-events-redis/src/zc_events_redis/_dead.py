"""Dead-letter tools for the redis backend: list and replay ``P:dead:<service>``.

The worker adds one entry per dead letter (fields ``stream``, ``entry``, ``reason``,
``deliveries``, ``body``, ``at``). Listing reads the stream (nothing is removed). Replaying
publishes each chosen envelope to its key's stream again, as a ``*_no_wait`` call (nobody waits
for its reply any more), and deletes the dead-letter entry only once Redis has the new one.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from zc_events import DeadLetter, Envelope, EnvelopeError, PublishError

if TYPE_CHECKING:
    from ._backend import RedisBackend

__all__ = ["list_dead_letters", "replay_dead_letters"]

log = logging.getLogger("zc_events.redis")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _describe(
    dead: str, entry_id: bytes, fields: dict[bytes, bytes]
) -> tuple[DeadLetter, Envelope | None]:
    body = fields.get(b"body") or b""
    try:
        envelope: Envelope | None = Envelope.decode(body)
    except (EnvelopeError, ValueError, TypeError):
        envelope = None
    first_seen = None
    at = fields.get(b"at")
    if at is not None:
        try:
            stamp = datetime.datetime.fromtimestamp(float(at), datetime.UTC)
            first_seen = stamp.isoformat(timespec="seconds").replace("+00:00", "Z")
        except ValueError:
            first_seen = _text(at)
    letter = DeadLetter(
        id=envelope.id if envelope is not None else _text(entry_id),
        key=envelope.key if envelope is not None else None,
        method=envelope.method if envelope is not None else None,
        reason=_text(fields.get(b"reason", b"unknown")),
        first_seen=first_seen,
        size=len(body),
        queue=_text(fields.get(b"stream", dead.encode())),
    )
    return letter, envelope


def _entries(backend: RedisBackend, service: str | None) -> tuple[str, list[Any]]:
    dead = backend.options.names.dead(service or backend.queue)
    entries: Any = backend._redis.xrange(dead)
    return dead, entries


def list_dead_letters(backend: RedisBackend, service: str | None) -> list[DeadLetter]:
    """The dead letters of ``service``, oldest first, left in place."""
    dead, entries = _entries(backend, service)
    return [_describe(dead, entry_id, fields)[0] for entry_id, fields in entries]


def replay_dead_letters(
    backend: RedisBackend,
    service: str | None,
    ids: Iterable[str] | None,
    prepare: Callable[[Envelope], Envelope] | None = None,
) -> list[str]:
    """Replay the dead letters ``ids`` (all with None); return the ids replayed. Raises
    PublishError naming those that could not be replayed (the others are replayed anyway)."""
    wanted = None if ids is None else set(ids)
    dead, entries = _entries(backend, service)
    replayed: list[str] = []
    failed: list[str] = []
    for entry_id, fields in entries:
        letter, envelope = _describe(dead, entry_id, fields)
        if wanted is not None and letter.id not in wanted:
            continue
        if envelope is None:
            failed.append(f"{letter.id}: not a zc-events message ({letter.reason})")
            continue
        envelope.reply_to = None
        envelope.deadline = None
        try:
            if prepare is not None:
                envelope = prepare(envelope)
            backend.send(envelope)
        except Exception as exc:
            failed.append(f"{letter.id}: {exc}")
            continue
        backend._redis.xdel(dead, entry_id)
        replayed.append(letter.id)
        log.info(
            "replayed dead letter %s (%s %r) from %r", letter.id, letter.method, letter.key, dead
        )
    if failed:
        done = f"{len(replayed)} replayed ({', '.join(replayed)}); " if replayed else ""
        raise PublishError(
            f"{done}{len(failed)} dead letter(s) not replayed and left in {dead!r}: "
            + "; ".join(failed)
        )
    return replayed
