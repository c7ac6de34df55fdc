"""Helpers for tests of services that run on RabbitMQ."""

from __future__ import annotations

from collections.abc import Iterable

import pika

__all__ = ["delete_broker_objects"]

LOCAL_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


def delete_broker_objects(
    queues: Iterable[str] = (), exchanges: Iterable[str] = (), *, url: str = LOCAL_URL
) -> None:
    """Delete ``queues`` and ``exchanges`` (missing ones are fine) over one short connection."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for queue in queues:
            channel.queue_delete(queue)
        for exchange in exchanges:
            channel.exchange_delete(exchange)
    finally:
        connection.close()
