"""Dead-letter tools: list ``<service>.dead`` and replay its messages (``zc-events dead``).

A worker moves a message it cannot handle to ``<service>.dead``: either a copy with
``x-zc-events-*`` headers (why, when, from which queue) or, for a rejected native message, the
broker's own dead-lettering with ``x-death``. Listing reads every message without acknowledging
it (closing the channel puts them all back, in order). Replaying publishes a message again with
publisher confirms — a native envelope to its key on the topic exchange (as a ``*_no_wait``
call: nobody waits for the reply any more), a legacy message to the queue it came from — and
acknowledges (removes) the dead letter only once the broker confirmed the new copy.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pika
import pika.exceptions

from zc_events import ConfigurationError, DeadLetter, Envelope, EnvelopeError, PublishError, legacy
from zc_events.serving import ERROR_HEADER, FAILED_AT_HEADER, QUEUE_HEADER

from ._amqp import CONNECTION_ERRORS, Outgoing, describe_url

if TYPE_CHECKING:
    from ._base import RabbitMQBase

__all__ = ["list_dead_letters", "replay_dead_letters"]

log = logging.getLogger("zc_events.rabbitmq")

_DROP_ON_REPLAY = ("x-death", "x-first-death-", "x-last-death-", "x-zc-events-")


@dataclass
class _Held:
    """A dead letter taken from the queue and not acknowledged yet."""

    letter: DeadLetter
    tag: int
    properties: Any
    body: bytes
    envelope: Envelope | None
    legacy: bool


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _when(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        when: datetime.datetime = value
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.UTC)
        return when.astimezone(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, int | float):
        stamp = datetime.datetime.fromtimestamp(value, datetime.UTC)
        return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")
    return _text(value)


def _describe(
    dead_queue: str, tag: int, properties: Any, body: bytes
) -> tuple[DeadLetter, Envelope | None, bool]:
    headers: dict[str, Any] = dict(properties.headers or {})
    deaths = headers.get("x-death") or []
    death: dict[str, Any] = deaths[0] if deaths and isinstance(deaths[0], dict) else {}
    envelope: Envelope | None = None
    is_legacy = False
    try:
        envelope = Envelope.decode(body)
    except EnvelopeError:
        try:
            envelope = legacy.parse_request(body, headers).envelope
            is_legacy = True
        except (EnvelopeError, Exception):
            envelope = None
    if envelope is not None:
        message_id = envelope.id
    else:
        message_id = _text(
            properties.message_id
            or properties.correlation_id
            or "body-" + hashlib.sha1(body).hexdigest()[:12]
        )
    if ERROR_HEADER in headers:
        reason = _text(headers[ERROR_HEADER])
    elif death:
        reason = f"{_text(death.get('reason', 'dead-lettered'))} by the broker"
        reason += " (the worker's log says why)"
    else:
        reason = "unknown"
    queue = headers.get(QUEUE_HEADER) or death.get("queue") or headers.get("x-first-death-queue")
    letter = DeadLetter(
        id=message_id,
        key=envelope.key if envelope is not None else None,
        method=envelope.method if envelope is not None else None,
        reason=reason,
        first_seen=_when(headers.get(FAILED_AT_HEADER) or death.get("time")),
        size=len(body),
        queue=_text(queue) if queue else dead_queue.removesuffix(".dead"),
    )
    return letter, envelope, is_legacy


class _DeadQueue:
    """A connection holding every message of ``<service>.dead`` unacknowledged."""

    def __init__(self, backend: RabbitMQBase, service: str | None) -> None:
        service = service or backend.settings.service_name
        self.name = f"{service}.dead"
        self.service = service
        try:
            self.connection = pika.BlockingConnection(backend._params)
        except CONNECTION_ERRORS as exc:
            raise PublishError(
                f"cannot connect to RabbitMQ at {describe_url(backend.url)}: {exc!r}"
            ) from exc
        self.channel = self.connection.channel()

    def take_all(self) -> list[_Held]:
        try:
            declared = self.channel.queue_declare(self.name, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                raise ConfigurationError(
                    f"there is no dead-letter queue {self.name!r} on the broker: is "
                    f"{self.service!r} the SERVICE_NAME of a worker that has run?"
                ) from exc
            raise
        held: list[_Held] = []
        for _ in range(declared.method.message_count):
            method, properties, body = self.channel.basic_get(self.name, auto_ack=False)
            if method is None:
                break
            tag, body = method.delivery_tag, body or b""
            assert tag is not None  # basic_get with a message always has its delivery tag
            letter, envelope, is_legacy = _describe(self.name, tag, properties, body)
            held.append(_Held(letter, tag, properties, body, envelope, is_legacy))
        return held

    def close(self) -> None:
        """Close; the broker puts back every message not acknowledged, in order."""
        try:
            if self.connection.is_open:
                self.connection.close()
        except Exception:
            log.debug("error closing the dead-letter connection", exc_info=True)


def list_dead_letters(backend: RabbitMQBase, service: str | None) -> list[DeadLetter]:
    """The dead letters of ``service``, oldest first, left in the queue."""
    queue = _DeadQueue(backend, service)
    try:
        return [h.letter for h in queue.take_all()]
    finally:
        queue.close()


def _outgoing(
    backend: RabbitMQBase, held: _Held, prepare: Callable[[Envelope], Envelope] | None
) -> Outgoing:
    envelope = held.envelope
    if envelope is None:
        raise PublishError(
            f"dead letter {held.letter.id} is not a zc-events message ({held.letter.reason}); "
            "it cannot be replayed"
        )
    if held.legacy:  # the old protocol routes by queue (fanout): put it back where it was
        headers = {
            k: v
            for k, v in (held.properties.headers or {}).items()
            if not k.startswith(_DROP_ON_REPLAY)
        }
        properties = pika.BasicProperties(
            content_type=held.properties.content_type,
            content_encoding=held.properties.content_encoding,
            correlation_id=held.properties.correlation_id,
            priority=held.properties.priority,
            delivery_mode=2,
            headers=headers,
        )
        return Outgoing("", held.letter.queue, held.body, properties)
    # Nobody waits for the reply of a dead letter: replay it as a *_no_wait call.
    envelope.reply_to = None
    envelope.deadline = None
    if prepare is not None:
        envelope = held.envelope = prepare(envelope)
    exchange = getattr(backend, "exchange", "zc-events")
    properties = pika.BasicProperties(
        content_type="application/json",
        delivery_mode=2,
        priority=envelope.priority,
        correlation_id=envelope.id,
        message_id=envelope.id,
    )
    return Outgoing(exchange, envelope.key, envelope.encode(), properties)


def replay_dead_letters(
    backend: RabbitMQBase,
    service: str | None,
    ids: Iterable[str] | None,
    prepare: Callable[[Envelope], Envelope] | None = None,
) -> list[str]:
    """Replay the dead letters ``ids`` (all with None); return the ids replayed.

    Each one is acknowledged (removed) only after the broker confirmed its new copy. Raises
    PublishError naming the ones that could not be replayed (the others are replayed anyway).
    """
    wanted = None if ids is None else set(ids)
    queue = _DeadQueue(backend, service)
    replayed: list[str] = []
    failed: list[str] = []
    try:
        for held in queue.take_all():
            if wanted is not None and held.letter.id not in wanted:
                continue
            try:
                outgoing = _outgoing(backend, held, prepare)
                backend.publish_confirmed([held.envelope], [outgoing])  # type: ignore[list-item]
            except Exception as exc:
                failed.append(f"{held.letter.id}: {exc}")
                continue
            queue.channel.basic_ack(held.tag)
            replayed.append(held.letter.id)
            log.info(
                "replayed dead letter %s (%s %r) from %r",
                held.letter.id,
                held.letter.method,
                held.letter.key,
                queue.name,
            )
    finally:
        queue.close()
    if failed:
        done = f"{len(replayed)} replayed ({', '.join(replayed)}); " if replayed else ""
        raise PublishError(
            f"{done}{len(failed)} dead letter(s) of {queue.service!r} not replayed and left "
            f"in {queue.name!r}: " + "; ".join(failed)
        )
    return replayed
