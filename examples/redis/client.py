"""Call the calculator service over Redis: ZC_EVENTS_BACKEND=redis python client.py"""

import zc_events

r = zc_events.get("calculator.add", data={"x": 1, "y": 2})
print(f"get calculator.add -> data={r.data} has_errors={r.has_errors}")

r = zc_events.get("calculator.add", data={"x": 1})
print(f"get calculator.add, y missing -> has_errors={r.has_errors} {r.errors[0]['type']}")

message_id = zc_events.post_no_wait("calculator.log", data={"event": "one"})
print(f"post_no_wait calculator.log -> {message_id} (added to the stream)")

with zc_events.default_client().batch() as batch:
    for i in range(100):
        batch.post_no_wait("calculator.log", data={"event": i})
print("batch of 100 post_no_wait -> added in one round trip")

try:
    zc_events.get("nobody.handles.this")
except zc_events.NoRouteError as exc:
    print(f"get nobody.handles.this -> NoRouteError: {exc}")
