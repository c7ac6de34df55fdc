"""Testing tools: :class:`EventsMock` (canned responses, recorded calls), :func:`run_worker` (a
real worker process for the length of a ``with`` block), :func:`fuzz_bodies` (hostile message
bodies) and the conformance suite in
:mod:`zc_events.testing.conformance`. The pytest plugin adds the fixtures ``zc_events_memory``
and ``zc_events_mock``."""

from ._fuzz import fuzz_bodies
from ._mock import Call, EventsMock, UnexpectedCall
from ._process import READY_MARKER, WorkerProcess, run_worker, wait_for, wait_until_served

__all__ = [
    "READY_MARKER",
    "Call",
    "EventsMock",
    "UnexpectedCall",
    "WorkerProcess",
    "fuzz_bodies",
    "run_worker",
    "wait_for",
    "wait_until_served",
]
