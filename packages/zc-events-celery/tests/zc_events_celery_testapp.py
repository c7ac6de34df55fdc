"""The Celery app the tests run real workers of (``celery -A zc_events_celery_testapp worker``).

Everything that names a broker entity comes from the environment, so every test session uses
its own exchange and queues: SERVICE_NAME, EVENTS_EXCHANGE, EVENTS_REDIS_URL, CELERY_BROKER_URL,
ZC_TEST_DEFAULT_QUEUE, and ZC_TEST_RESULT_BACKEND (for the plain-Celery comparison task).
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery

import zc_events
import zc_events.testing.handlers  # registers the conformance handlers
import zc_events_celery

app = Celery(
    "zc_events_celery_testapp",
    broker=os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
    backend=os.environ.get("ZC_TEST_RESULT_BACKEND") or None,
    set_as_current=False,
)
app.conf.update(
    task_default_queue=os.environ.get("ZC_TEST_DEFAULT_QUEUE", "zc-events-test-celery"),
    worker_enable_remote_control=False,
    worker_send_task_events=False,
)
zc_events_celery.install(app)

_redis: Any = None


@zc_events.handler("celery-test.record")
def record(request: zc_events.Request) -> None:
    """Add ``data['i']`` to the Redis set ``data['set']`` after ``data['sleep']`` seconds."""
    global _redis
    if _redis is None:
        import redis

        _redis = redis.Redis.from_url(
            os.environ.get("EVENTS_REDIS_URL", "redis://127.0.0.1:6379/0")
        )
    time.sleep(float(request.data.get("sleep", 0)))
    _redis.sadd(request.data["set"], request.data["i"])
    _redis.expire(request.data["set"], 300)


@zc_events.handler("celery-test.fail")
def fail(request: zc_events.Request) -> None:
    raise ValueError(f"boom {request.data}")


@zc_events.handler("celery-test.exit")
def exit_now(request: zc_events.Request) -> None:
    """Count the attempt in the Redis list ``data['list']``, then kill the worker process."""
    import redis

    client = redis.Redis.from_url(os.environ.get("EVENTS_REDIS_URL", "redis://127.0.0.1:6379/0"))
    client.rpush(request.data["list"], os.getpid())
    client.expire(request.data["list"], 300)
    os._exit(3)


@app.task(name="zc-events-test.add", shared=False)
def add(x: int, y: int) -> int:
    """A plain Celery task, to compare with zc-events over Celery."""
    return x + y
