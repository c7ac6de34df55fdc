"""asyncio plumbing shared by the sync and async faces.

* :func:`run_coroutine` runs a coroutine to completion from synchronous code, on the one
  background event loop zc-events owns in this process (a daemon thread started on first use,
  restarted in a forked child). Sync workers use it for ``async def`` handlers, so every such
  handler of a process shares one loop instead of paying for a new loop per call.
* :func:`drive` runs a coroutine that never suspends (its awaits all complete at once) without
  any loop: the sync :meth:`Dispatcher.dispatch` drives the same coroutine the async face awaits.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["drive", "run_coroutine"]

T = TypeVar("T")


class _LoopThread:
    """An event loop running forever on a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="zc-events-asyncio", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()


_lock = threading.Lock()
_loop_thread: _LoopThread | None = None


def _forget_after_fork() -> None:
    # The thread does not exist in a forked child (Celery's prefork pool): start a new one there.
    global _loop_thread, _lock
    _loop_thread = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def background_loop() -> asyncio.AbstractEventLoop:
    """The process's zc-events event loop, started on first use."""
    global _loop_thread
    current = _loop_thread
    if current is None:
        with _lock:
            if _loop_thread is None:
                _loop_thread = _LoopThread()
            current = _loop_thread
    return current.loop


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the background loop and block until it finishes; return its result.

    The coroutine runs in a copy of the caller's context (``call_soon_threadsafe`` captures
    it), so context variables set around the call (:func:`zc_events.current_request`, tracing
    spans) are seen inside it. Raises RuntimeError when called on the background loop's own
    thread (it would wait for itself): code running there must ``await`` instead.
    """
    loop = background_loop()
    current = _loop_thread
    if current is not None and threading.current_thread() is current.thread:
        coro.close()
        raise RuntimeError(
            "a synchronous zc-events call from an async handler cannot wait for another "
            "async handler on the same loop: use AsyncEventClient (await client.get(...)) there"
        )
    return asyncio.run_coroutine_threadsafe(coro, loop).result()


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine whose awaits never suspend, without an event loop; return its result."""
    try:
        coro.send(None)
    except StopIteration as stop:
        result: T = stop.value
        return result
    coro.close()
    raise RuntimeError("internal error: a synchronous step suspended")
