"""A Celery app that names its exchange only in ``install()``, as the celery README shows.

No EVENTS_EXCHANGE or SERVICE_NAME: the names come from ZC_TEST_EXCHANGE and ZC_TEST_SERVICE
and are passed to ``install(app, service_name=..., events_exchange=...)``.
"""

from __future__ import annotations

import os

from celery import Celery

import zc_events_celery

app = Celery(
    "zc_events_celery_exchange_app",
    broker=os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
    set_as_current=False,
)
app.conf.update(
    task_default_queue=os.environ["ZC_TEST_DEFAULT_QUEUE"],
    worker_enable_remote_control=False,
    worker_send_task_events=False,
)
zc_events_celery.install(
    app,
    service_name=os.environ["ZC_TEST_SERVICE"],
    events_exchange=os.environ["ZC_TEST_EXCHANGE"],
    redis_url=os.environ.get("ZC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
    modules=["zc_events.testing.handlers"],
)
