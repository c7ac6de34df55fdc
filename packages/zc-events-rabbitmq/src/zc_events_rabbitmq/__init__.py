"""RabbitMQ transports for zc-events.

- ``rabbitmq`` (:class:`RabbitMQBackend`): the native protocol. A topic exchange routed by
  handler key, direct reply-to, publisher confirms, and a worker
  (``zc-events worker --backend rabbitmq MODULE...``).
- ``rabbitmq_legacy`` (:class:`LegacyRabbitMQBackend`): wire-compatible with zc_events 0.4
  (Celery-format messages on a fanout exchange, replies through Redis), so old and new services
  call each other in both directions during a migration.
- :class:`AsyncRabbitMQBackend` and :class:`AsyncLegacyRabbitMQBackend`: the same wires for
  ``zc_events.AsyncEventClient`` (the ``async`` extra: ``pip install
  'zc-events-rabbitmq[async]'``); imported on first use, so sync users never import aiormq.
"""

from typing import Any

from ._consumers import LegacyConsumer, NativeConsumer
from ._legacy import LegacyRabbitMQBackend
from ._native import DEFAULT_EXCHANGE, RabbitMQBackend
from ._worker import Worker

__version__ = "1.0.0"

__all__ = [
    "DEFAULT_EXCHANGE",
    "AsyncLegacyRabbitMQBackend",
    "AsyncRabbitMQBackend",
    "LegacyConsumer",
    "LegacyRabbitMQBackend",
    "NativeConsumer",
    "RabbitMQBackend",
    "Worker",
]


def __getattr__(name: str) -> Any:
    if name in ("AsyncRabbitMQBackend", "AsyncLegacyRabbitMQBackend"):
        try:
            from . import _aio
        except ImportError as exc:
            if exc.name not in ("aiormq", "pamqp", "yarl"):
                raise
            from ._aio_load import INSTALL_HINT

            raise ImportError(f"{name} needs aiormq: {INSTALL_HINT}", name=exc.name) from exc
        return getattr(_aio, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
