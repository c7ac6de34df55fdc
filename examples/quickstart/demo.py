"""The quickstart on the embedded in-memory backend: `hatch run demo`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import service  # noqa: F401  (registers the 'add' handler)

import zc_events

zc_events.configure(backend="memory")

message_id = zc_events.post_no_wait("add", data={"x": 1, "y": 1})  # fire and forget
print("post_no_wait('add', data={'x': 1, 'y': 1}) ->", message_id)

r = zc_events.get("add", data={"x": 1, "y": 1})  # wait for the reply
print("get('add', data={'x': 1, 'y': 1})")
print("  r.data       ", r.data)
print("  r.has_errors ", r.has_errors)

r = zc_events.get("add", data={"x": 1})
print("get('add', data={'x': 1})")
print("  r.data       ", r.data)
print("  r.has_errors ", r.has_errors)
print("  r.errors[0]  ", r.errors[0])  # no traceback unless ZC_EVENTS_SEND_TRACEBACKS

zc_events.default_client().backend.join()  # let the fire-and-forget call finish
