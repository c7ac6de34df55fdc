"""The handlers the conformance suite calls. Importing this module registers them in the
process-wide registry, so a worker serves them with ``zc-events worker zc_events.testing.handlers``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from .._handlers import HandlerRegistry, handlers
from .._request import Request
from .._response import Response

__all__ = ["HANDLERS", "register"]

_recorded: dict[str, list[dict[str, Any]]] = {}
_lock = threading.Lock()

HANDLERS = HandlerRegistry()


@HANDLERS.register("conformance.echo")
def echo(request: Request) -> dict[str, Any]:
    return {
        "key": request.key,
        "method": request.method,
        "data": request.data,
        "headers": request.headers,
        "id": request.id,
    }


@HANDLERS.register("conformance.add")
def add(request: Request) -> dict[str, Any]:
    return {"answer": request.data["x"] + request.data["y"]}


@HANDLERS.register("conformance.fail")
def fail(request: Request) -> None:
    raise ValueError(request.data.get("message", "failed on purpose"))


@HANDLERS.register("conformance.status")
def status(request: Request) -> Response:
    return Response(request.data, status=201)


@HANDLERS.register("conformance.sleep")
def sleep(request: Request) -> dict[str, Any]:
    time.sleep(float(request.data["seconds"]))
    return {"slept": request.data["seconds"]}


@HANDLERS.register("conformance.async_add")
async def async_add(request: Request) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"answer": request.data["x"] + request.data["y"]}


@HANDLERS.register("conformance.async_sleep")
async def async_sleep(request: Request) -> dict[str, Any]:
    await asyncio.sleep(float(request.data["seconds"]))
    return {"slept": request.data["seconds"]}


@HANDLERS.register("conformance.unserialisable")
def unserialisable(request: Request) -> object:
    return object()


@HANDLERS.register("conformance.record")
def record(request: Request) -> None:
    with _lock:
        _recorded.setdefault(request.data["token"], []).append(
            {"method": request.method, "data": request.data}
        )


@HANDLERS.register("conformance.recorded")
def recorded(request: Request) -> list[dict[str, Any]]:
    with _lock:
        return list(_recorded.get(request.data["token"], []))


def register(registry: HandlerRegistry = handlers) -> None:
    """Register every conformance handler in ``registry``."""
    for key in HANDLERS:
        registry.register(key, HANDLERS.get(key))


register()
