"""Call the example service through its own Celery app (see README.md).

The client is given the app, so it publishes to the events exchange the app's ``install()``
names: no EVENTS_EXCHANGE setting is needed.
"""

from __future__ import annotations

from proj.celery import add

import zc_events

zc_events.configure(
    backend="celery",
    backend_options={"app": "proj.celery:app"},
    timeout=10,
)

zc_events.post_no_wait("add", data={"x": 1, "y": 1})  # fire and forget
r = zc_events.get("add", data={"x": 1, "y": 1})  # wait for the reply
print("zc_events.get('add', data={'x': 1, 'y': 1}).data ->", r.data)
r = zc_events.get("add", data={"x": 1})
print("zc_events.get('add', data={'x': 1}).errors[0]['type'] ->", r.errors[0]["type"])
result = add.delay(1, 1)
print("plain Celery add.delay(1, 1).get() ->", result.get(timeout=10))
result.forget()  # drop the stored result now (Celery keeps it in Redis for a day)
