"""zc-events over Redis Streams: the ``redis`` backend and its worker.

Install ``zc-events-core`` and ``zc-events-redis`` and set ``ZC_EVENTS_BACKEND=redis``.
"""

from ._backend import DEFAULT_PREFIX, DEFAULT_URL, RedisBackend

__version__ = "1.0.0"

__all__ = ["DEFAULT_PREFIX", "DEFAULT_URL", "RedisBackend"]
