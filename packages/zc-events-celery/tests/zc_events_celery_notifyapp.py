"""A Celery app serving legacy email notifications (``install(app, notifications=["email"])``),
for real workers started by test_notifications.py.

Names come from the environment: SERVICE_NAME, EVENTS_EXCHANGE, NOTIFICATIONS_EXCHANGE,
CELERY_BROKER_URL, ZC_TEST_DEFAULT_QUEUE; each ``send_email`` call is recorded as JSON in the
Redis list ZC_TEST_CALLS.
"""

from __future__ import annotations

import json
import os

import redis
from celery import Celery

import zc_events
import zc_events_celery

app = Celery(
    "zc_events_celery_notifyapp",
    broker=os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
    set_as_current=False,
)
app.conf.update(
    task_default_queue=os.environ["ZC_TEST_DEFAULT_QUEUE"],
    worker_enable_remote_control=False,
    worker_send_task_events=False,
)
zc_events_celery.install(app, notifications=["email"])

_redis = redis.Redis.from_url(os.environ.get("EVENTS_REDIS_URL", "redis://127.0.0.1:6379/0"))


@zc_events.handler("send_email")
def send_email(request: zc_events.Request) -> None:
    calls = os.environ["ZC_TEST_CALLS"]
    _redis.rpush(calls, json.dumps({"key": request.key, "data": request.data}))
    _redis.expire(calls, 300)
