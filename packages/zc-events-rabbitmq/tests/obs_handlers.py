"""Handlers for the observability tests (deadlines, caused-by ids, dead-letter replay)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import zc_events
from zc_events import Request, RequestTimeout


@zc_events.handler("obs.inner")
def inner(request: Request) -> dict[str, Any]:
    return {"id": request.id, "deadline": request.deadline, "caused_by": request.caused_by}


@zc_events.handler("obs.outer")
def outer(request: Request) -> dict[str, Any]:
    # No timeout given: the client default (30 s) is capped to this request's deadline.
    nested = zc_events.get("obs.inner").data
    return {"id": request.id, "deadline": request.deadline, "inner": nested}


@zc_events.handler("obs.slow")
def slow(request: Request) -> None:
    time.sleep(float(request.data or 5))


@zc_events.handler("obs.waits")
def waits(request: Request) -> None:
    """Call a slow handler with the default 30 s timeout; write how long the call waited."""
    start = time.monotonic()
    try:
        zc_events.get("obs.slow", data=20)
        outcome = "answered"
    except RequestTimeout as exc:
        outcome = f"RequestTimeout: {exc}"
    Path(request.headers["path"]).write_text(
        json.dumps({"waited": time.monotonic() - start, "outcome": outcome})
    )


@zc_events.handler("obs.spawn")
def spawn(request: Request) -> str:
    zc_events.post_no_wait("obs.boom")
    return request.id


@zc_events.handler("obs.boom")
def boom(request: Request) -> None:
    raise ValueError("boom")


@zc_events.handler("obs.record")
def record(request: Request) -> None:
    Path(request.data["path"]).write_text(json.dumps({"id": request.id, "data": request.data}))


@zc_events.handler("obs.nested-backend")
def nested_backend(request: Request) -> dict[str, Any]:
    """The backend and broker URL a call made in this handler uses, and that call's answer."""
    client = zc_events.default_client()
    answer = zc_events.get("obs.inner", timeout=10)
    return {
        "backend": client.backend.name,
        "url": client.settings.backend_options.get("url"),
        "answered_by": answer.data["id"] if answer.data else None,
    }
