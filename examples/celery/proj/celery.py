"""The service's Celery app: one ``install()`` call makes it a zc-events service.

Configuration comes from the environment: CELERY_BROKER_URL, CELERY_RESULT_BACKEND,
SERVICE_NAME (default ``proj``), EVENTS_REDIS_URL, and this example's own PROJ_EVENTS_EXCHANGE
(default ``proj-events``) and PROJ_TASK_QUEUE (default ``proj``). The events exchange is given to
``install()``: neither the worker nor a client of this app needs EVENTS_EXCHANGE.
"""

from __future__ import annotations

import os

from celery import Celery

import zc_events_celery

app = Celery(
    "proj",
    broker=os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@localhost:5672//"),
    backend=os.environ.get("CELERY_RESULT_BACKEND", "redis://localhost:6379/0"),
)
# The service's own tasks get their own default queue (rather than the shared "celery").
app.conf.task_default_queue = os.environ.get("PROJ_TASK_QUEUE", "proj")

zc_events_celery.install(
    app,
    service_name=os.environ.get("SERVICE_NAME", "proj"),
    events_exchange=os.environ.get("PROJ_EVENTS_EXCHANGE", "proj-events"),
    modules=["proj.handlers"],
)


@app.task(name="proj.add")
def add(x: int, y: int) -> int:
    """A plain Celery task, for comparison: ``add.delay(1, 1).get()``."""
    return x + y
