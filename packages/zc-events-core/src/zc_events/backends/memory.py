"""The embedded ``memory`` backend: an in-process transport that behaves like a real one.

Every envelope and response goes through JSON encoding, a key nobody handles raises NoRouteError
at once, ``*_no_wait`` returns before the handler runs (on a worker thread), and
:meth:`MemoryBackend.join` waits for pending fire-and-forget work.

Waiting calls run the handler inline on the caller's thread by default (a few microseconds
instead of a thread hand-off): a handler that overruns the timeout makes the call raise
RequestTimeout when it returns. ``inline=False`` runs them on worker threads, so the caller
stops waiting at the timeout even if the handler never returns.

:class:`AsyncMemoryBackend` is the native asyncio face (``AsyncEventClient('memory')``).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .._async_backend import AsyncBackend
from .._backend import Backend, BaseBackend
from .._envelope import Envelope
from .._exceptions import ConfigurationError, NoRouteError, PublishError, RequestTimeout
from .._handlers import Dispatcher
from .._response import Response
from .._settings import Settings
from ..serving import Outcome, failed_dispatch, native_envelope, native_outcome, serve_native

__all__ = ["AsyncMemoryBackend", "MemoryBackend"]

log = logging.getLogger("zc_events.memory")


class _Reply:
    """A one-shot slot a worker fills and the caller waits on (lighter than a Future)."""

    __slots__ = ("done", "value")

    def __init__(self) -> None:
        self.done = threading.Lock()
        self.done.acquire()
        self.value: bytes | None = None


_STOP = object()


def _check_workers(workers: object) -> int:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigurationError(
            f"memory backend option 'workers' must be an int >= 1, got {workers!r}"
        )
    return workers


def _timed_out(envelope: Envelope, timeout: float, why: str = "") -> RequestTimeout:
    return RequestTimeout(
        f"no reply to {envelope.method} {envelope.key!r} within {timeout:g} s{why}",
        envelope.key,
        timeout,
    )


class _Memory(BaseBackend):
    """What the sync and async faces of the memory backend share: options, the dispatcher,
    routing."""

    name = "memory"

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        workers: int = 8,
        dispatcher: Dispatcher | None = None,
        inline: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(settings=settings, **options)
        self.workers = _check_workers(workers)
        self.inline = bool(inline)
        self._dispatcher = dispatcher
        self._closed = False
        #: What a real transport would dead-letter, kept in process as ``(body, headers)``: a
        #: message that could not be decoded or dispatched, and a failed ``*_no_wait`` call
        #: (unless ``ZC_EVENTS_DEAD_LETTER_FAILED_NO_WAIT`` is off), with the
        #: ``x-zc-events-*`` headers of :mod:`zc_events.serving`.
        self.dead_lettered: list[tuple[bytes, dict[str, Any]]] = []
        self._init_state()

    def _outcome(self, outcome: Outcome, body: bytes) -> bytes | None:
        """The reply of a served message; a dead letter is logged and kept."""
        if not outcome.ack:
            headers = outcome.dead_letter_copy(
                None,
                queue="memory",
                dead_queue="MemoryBackend.dead_lettered",
                attempts=1,
                logger=log,
            )
            self.dead_lettered.append((body, headers))
        return outcome.reply

    def _init_state(self) -> None:
        """Set up the face's own state (queues, threads, tasks)."""

    @property
    def dispatcher(self) -> Dispatcher:
        """The dispatcher that serves this backend's messages (built from settings if not given)."""
        if self._dispatcher is None:
            self._dispatcher = self.default_dispatcher()
        return self._dispatcher

    def _route(self, envelope: Envelope) -> bytes:
        body = self.check_size(envelope, envelope.encode())
        if not self.dispatcher.handles(envelope.key):
            raise NoRouteError(
                f"no handler is registered for key {envelope.key!r} in this process: the "
                "'memory' backend is in-process and reaches only handlers registered here; "
                "to call other services set ZC_EVENTS_BACKEND (e.g. rabbitmq)",
                envelope.key,
            )
        return body


class MemoryBackend(_Memory, Backend):
    """In-process transport.

    Options: ``workers`` (handler threads, default 8); ``dispatcher`` (default: the process-wide
    handlers and ``ZC_EVENTS_HANDLERS``); ``inline`` (default True): run waiting calls on the
    calling thread, which saves a thread hand-off (about 80 µs on a small VM) but reports a
    timeout only once the handler has returned; with ``inline=False`` they run on the worker
    threads and the caller stops waiting at the timeout.
    """

    def _init_state(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition()

    @classmethod
    def async_backend_class(cls) -> type[AsyncBackend]:
        return AsyncMemoryBackend

    # -- workers ---------------------------------------------------------------------------
    def _ensure_started(self) -> None:
        if self._threads:
            return
        with self._start_lock:
            if self._closed:
                raise PublishError("the memory backend is closed")
            if not self._threads:
                for i in range(self.workers):
                    t = threading.Thread(
                        target=self._work, name=f"zc-events-memory-{i}", daemon=True
                    )
                    t.start()
                    self._threads.append(t)

    def _work(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is _STOP:
                return
            body, reply = item
            outcome = serve_native(
                self.dispatcher,
                body,
                dead_letter_failed_no_wait=self.settings.dead_letter_failed_no_wait,
            )
            result = self._outcome(outcome, body)
            if reply is not None:
                reply.value = result
                reply.done.release()
            else:
                with self._idle:
                    self._pending -= 1
                    if not self._pending:
                        self._idle.notify_all()

    # -- client side -----------------------------------------------------------------------
    def request(self, envelope: Envelope, timeout: float) -> Response:
        envelope.reply_to = envelope.reply_to or "memory"  # keep what the client set (signed)
        body = self._route(envelope)
        if self.inline:
            if self._closed:
                raise PublishError("the memory backend is closed")
            raw = self.dispatcher.handle(body)
            if raw is None or envelope.expired():
                raise _timed_out(
                    envelope,
                    timeout,
                    ": the handler ran past the timeout (the memory backend runs it inline; "
                    "inline=False stops waiting at the timeout)",
                )
            return Response.decode(raw)
        self._ensure_started()
        reply = _Reply()
        self._queue.put((body, reply))
        if not reply.done.acquire(timeout=timeout):
            raise _timed_out(envelope, timeout)
        if reply.value is None:  # expired before a worker got to it
            raise _timed_out(envelope, timeout, ": it expired before it was handled")
        return Response.decode(reply.value)

    def send(self, envelope: Envelope) -> None:
        envelope.reply_to = None
        body = self._route(envelope)
        self._ensure_started()
        with self._idle:
            self._pending += 1
        self._queue.put((body, None))

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every ``*_no_wait`` message sent so far was handled; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    @property
    def pending(self) -> int:
        """Fire-and-forget messages not handled yet."""
        return self._pending

    # -- server side -----------------------------------------------------------------------
    def serve(self, dispatcher: Dispatcher | None = None) -> None:
        """Handlers are served in-process; block until :meth:`stop`, then drain."""
        if dispatcher is not None:
            self._dispatcher = dispatcher
        self._ensure_started()
        # The line every worker logs once it consumes (zc_events.testing.run_worker waits for it).
        log.info("consuming in-process with %d worker thread(s)", self.workers)
        self._stopping.wait()
        self.join()

    def close(self) -> None:
        """Finish pending work and stop the worker threads."""
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(_STOP)
        for t in threads:
            t.join()


class AsyncMemoryBackend(_Memory, AsyncBackend):
    """The native asyncio face of the ``memory`` backend.

    ``async def`` handlers run as tasks on the caller's event loop; sync handlers run on
    ``workers`` threads (default 8), so they never block the loop. Each handler runs as its own
    task, as on a real server: a caller that times out or is cancelled stops waiting, the
    handler finishes. Options are those of :class:`MemoryBackend` (``inline`` has no effect
    here). :meth:`join` waits for pending fire-and-forget work; :meth:`aclose` drains it.
    """

    def _init_state(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._no_wait: set[asyncio.Task[Any]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, bytes | None], no_wait: bool) -> asyncio.Task[Any]:
        if self._closed:
            coro.close()
            raise PublishError("the memory backend is closed")
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, "zc-events-memory-async")
        task = asyncio.get_running_loop().create_task(coro)
        tasks = self._no_wait if no_wait else self._tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    async def _serve(self, body: bytes) -> bytes | None:
        dispatcher = self.dispatcher
        envelope = native_envelope(dispatcher, body)
        if isinstance(envelope, Outcome):
            return self._outcome(envelope, body)
        try:
            response = await dispatcher.adispatch(envelope, executor=self._executor)
        except Exception as exc:
            return self._outcome(failed_dispatch(envelope, exc), body)
        flag = self.settings.dead_letter_failed_no_wait
        return self._outcome(native_outcome(dispatcher, envelope, response, flag), body)

    async def request(self, envelope: Envelope, timeout: float) -> Response:
        envelope.reply_to = envelope.reply_to or "memory"  # keep what the client set (signed)
        body = self._route(envelope)
        task = self._spawn(self._serve(body), no_wait=False)
        try:
            async with asyncio.timeout(timeout):
                # shield: the caller's timeout or cancellation must not cancel the handler.
                raw = await asyncio.shield(task)
        except TimeoutError:
            raise _timed_out(envelope, timeout) from None
        if raw is None:  # expired before it was handled
            raise _timed_out(envelope, timeout, ": it expired before it was handled")
        return Response.decode(raw)

    async def send(self, envelope: Envelope) -> None:
        envelope.reply_to = None
        body = self._route(envelope)
        self._spawn(self._serve(body), no_wait=True)

    async def join(self, timeout: float | None = None) -> bool:
        """Wait until every ``*_no_wait`` message sent so far was handled; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                while self._no_wait:
                    await asyncio.wait(set(self._no_wait))
        except TimeoutError:
            return False
        return True

    @property
    def pending(self) -> int:
        """Fire-and-forget messages not handled yet."""
        return len(self._no_wait)

    async def aclose(self) -> None:
        """Finish pending fire-and-forget work, cancel handlers nobody waits for, then stop."""
        if self._closed:
            return
        self._closed = True
        while self._no_wait:
            await asyncio.wait(set(self._no_wait))
        orphans = list(self._tasks)
        for task in orphans:
            task.cancel()
        await asyncio.gather(*orphans, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
