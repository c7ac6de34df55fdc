"""Async handlers for test_async.py (imported by ``zc-events worker``)."""

from __future__ import annotations

import asyncio
from typing import Any

import zc_events

#: token -> [calls inside the handler now, event set once ``together`` are inside at once]
_gates: dict[str, list[Any]] = {}


@zc_events.handler("async.gate")
async def gate(request: zc_events.Request) -> dict[str, Any]:
    """Wait until ``together`` calls with this ``token`` are inside the handler at the same
    time (or ``wait`` seconds); report whether they were."""
    token, together = request.data["token"], request.data["together"]
    state = _gates.setdefault(token, [0, asyncio.Event(), 0])
    state[0] += 1
    state[2] = max(state[2], state[0])
    if state[0] >= together:
        state[1].set()
    try:
        await asyncio.wait_for(state[1].wait(), request.data["wait"])
        return {"together": True}
    except TimeoutError:
        return {"together": False, "most_at_once": state[2]}
    finally:
        state[0] -= 1


@zc_events.handler("async.sleep")
async def sleep(request: zc_events.Request) -> dict[str, Any]:
    await asyncio.sleep(float(request.data["seconds"]))
    return {"slept": request.data["seconds"]}


@zc_events.handler("async.fail")
async def fail(request: zc_events.Request) -> None:
    raise ValueError("async failure")


@zc_events.handler("sync.add")
def add(request: zc_events.Request) -> dict[str, Any]:
    return {"answer": request.data["x"] + request.data["y"]}
