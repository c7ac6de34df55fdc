"""``zc-events demo``: the README's quickstart on the embedded memory backend."""

from __future__ import annotations

import zc_events
from zc_events.backends.memory import MemoryBackend


def main() -> None:
    """Register ``add``, call it with every kind of verb, and print what each returns."""

    @zc_events.handler("add")
    def add(request: zc_events.Request) -> dict[str, int]:
        return {"answer": request.data["x"] + request.data["y"]}

    zc_events.configure(backend="memory")
    message_id = zc_events.post_no_wait("add", data={"x": 1, "y": 1})
    print(f"post_no_wait('add', data={{'x': 1, 'y': 1}}) -> message id {message_id}")
    r = zc_events.get("add", data={"x": 1, "y": 1})
    print(f"get('add', data={{'x': 1, 'y': 1}}) -> data={r.data} has_errors={r.has_errors}")
    r = zc_events.get("add", data={"x": 1})
    error = r.errors[0]
    print(
        f"get('add', data={{'x': 1}}) -> data={r.data} has_errors={r.has_errors} "
        f"errors[0]={{'type': {error['type']!r}, 'message': {error['message']!r}, ...}}"
    )
    backend = zc_events.default_client().backend
    if isinstance(backend, MemoryBackend):
        backend.join()
