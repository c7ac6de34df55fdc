"""Handlers for the fault tests, imported by worker subprocesses (PYTHONPATH=tests).

``fault.log`` appends ``data["i"]`` to the file named by ``FAULT_LOG`` with one ``write()`` in
append mode, so the record survives ``kill -9`` of the worker and concurrent threads do not mix.
"""

from __future__ import annotations

import os
import time
from typing import Any

import zc_events

_fd = os.open(os.environ.get("FAULT_LOG", os.devnull), os.O_WRONLY | os.O_APPEND | os.O_CREAT)


@zc_events.handler("fault.log")
def log(request: zc_events.Request) -> None:
    delay = request.data.get("sleep", 0)
    if delay:
        time.sleep(delay)
    os.write(_fd, f"{request.data['i']}\n".encode())


@zc_events.handler("fault.ping")
def ping(request: zc_events.Request) -> dict[str, Any]:
    return {"pong": request.data, "pid": os.getpid()}


@zc_events.handler("fault.exit")
def exit_now(request: zc_events.Request) -> None:
    """Record the attempt, then kill the worker process (as an OOM kill or a segfault would)."""
    os.write(_fd, f"{request.data['i']}\n".encode())
    os._exit(3)


@zc_events.handler("fault.fail")
def fail(request: zc_events.Request) -> None:
    raise ValueError(f"boom {request.data}")
