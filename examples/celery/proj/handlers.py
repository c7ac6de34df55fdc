"""zc-events handlers: plain functions taking a Request."""

from __future__ import annotations

from typing import Any

import zc_events


@zc_events.handler("add")
def add(request: zc_events.Request) -> dict[str, Any]:
    return {"answer": request.data["x"] + request.data["y"]}
