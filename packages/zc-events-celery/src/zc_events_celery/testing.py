"""Helpers for testing Celery services against a real worker (not eager mode).

with celery_worker("proj.celery:app", env={"SERVICE_NAME": "orders-test"}) as worker:
    ...                  # a `celery -A proj.celery:app worker` subprocess, ready to consume
    worker.kill()        # SIGKILL, as a crash would
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress

from zc_events.testing import WorkerProcess, run_worker

__all__ = [
    "CELERY_EXCHANGES",
    "CELERY_READY",
    "CeleryWorker",
    "celery_worker",
    "delete_amqp_entities",
    "delete_celery_exchanges",
]

#: The exchanges every Celery worker declares for remote control and events, shared by all the
#: workers on a broker (``celery inspect`` talks through them).
CELERY_EXCHANGES = ("celeryev", "celery.pidbox", "reply.celery.pidbox")

#: What ``celery worker`` prints once it consumes (``celery@host ready.``).
CELERY_READY = " ready."

#: The worker :func:`celery_worker` yields: a :class:`zc_events.testing.WorkerProcess`
#: (``pid``, ``process``, ``output``, ``lines``, ``wait_for_output()``, ``terminate()``,
#: ``kill()``).
CeleryWorker = WorkerProcess


@contextmanager
def celery_worker(
    app: str,
    *,
    env: Mapping[str, str] | None = None,
    queues: Sequence[str] = (),
    pool: str = "threads",
    concurrency: int = 4,
    loglevel: str = "INFO",
    pythonpath: Sequence[str | os.PathLike[str]] = (),
    extra_args: Sequence[str] = (),
    ready_timeout: float = 60.0,
) -> Iterator[CeleryWorker]:
    """Run ``celery -A app worker`` in a subprocess until the block ends (then stop it: SIGTERM,
    SIGKILL after 10 s), waiting until it consumes; built on :func:`zc_events.testing.run_worker`.

    Mingle, gossip and heartbeats are off, so the worker neither waits for nor talks to other
    workers on the broker. ``env`` is added to this process's environment.
    """
    hostname = f"zc-events-test-{uuid.uuid4().hex[:12]}@localhost"
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        app,
        "worker",
        "-n",
        hostname,
        "-P",
        pool,
        "-c",
        str(concurrency),
        "-l",
        loglevel,
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
        *(["-Q", ",".join(queues)] if queues else []),
        *extra_args,
    ]
    with run_worker(
        argv=command,
        env=env,
        pythonpath=pythonpath,
        ready=CELERY_READY,
        timeout=ready_timeout,
        stop_timeout=10,
    ) as worker:
        yield worker


def delete_amqp_entities(
    url: str, *, queues: Sequence[str] = (), exchanges: Sequence[str] = ()
) -> None:
    """Delete queues and exchanges (that your tests created) from the broker at ``url``."""
    from kombu import Connection

    with Connection(url) as connection:
        for method, names in (("queue_delete", queues), ("exchange_delete", exchanges)):
            for name in names:
                channel = connection.channel()
                with suppress(Exception):  # already gone: the broker closed the channel
                    getattr(channel, method)(name)
                with suppress(Exception):
                    channel.close()  # type: ignore[attr-defined]  # a kombu Channel has it


def delete_celery_exchanges(url: str, *, wait: float = 5.0) -> None:
    """Delete Celery's own exchanges (:data:`CELERY_EXCHANGES`) from the broker at ``url``
    unless a worker still uses them, after your test stopped the workers that declared them.

    A stopped worker's auto-delete queues go a moment after its connection closes; until then
    the exchange is in use, so each delete is retried for up to ``wait`` seconds. Another
    worker's queues stay, and so does the exchange.
    """
    from kombu import Connection

    with Connection(url) as connection:
        for name in CELERY_EXCHANGES:
            deadline = time.monotonic() + wait
            while True:
                channel = connection.channel()
                try:
                    channel.exchange_delete(name, if_unused=True)  # type: ignore[attr-defined]
                    break
                except Exception:  # 406: still bound to a queue (the broker closed the channel)
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
                finally:
                    with suppress(Exception):
                        channel.close()  # type: ignore[attr-defined]
