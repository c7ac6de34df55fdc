"""RabbitMQ transports for zc-events.

- ``rabbitmq`` (:class:`RabbitMQBackend`): the native protocol. A topic exchange routed by
  handler key, direct reply-to, publisher confirms, and a worker
  (``zc-events worker --backend rabbitmq MODULE...``).
- ``rabbitmq_legacy`` (:class:`LegacyRabbitMQBackend`): wire-compatible with zc_events 0.4
  (Celery-format messages on a fanout exchange, replies through Redis), so old and new services
  call each other in both directions during a migration.
"""

from ._consumers import LegacyConsumer, NativeConsumer
from ._legacy import LegacyRabbitMQBackend
from ._native import DEFAULT_EXCHANGE, RabbitMQBackend
from ._worker import Worker

__version__ = "1.0.0"

__all__ = [
    "DEFAULT_EXCHANGE",
    "LegacyConsumer",
    "LegacyRabbitMQBackend",
    "NativeConsumer",
    "RabbitMQBackend",
    "Worker",
]
