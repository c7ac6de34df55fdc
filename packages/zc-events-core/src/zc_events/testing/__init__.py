"""Testing tools: :class:`EventsMock` (canned responses, recorded calls) and the conformance
suite in :mod:`zc_events.testing.conformance`. The pytest plugin adds the fixtures
``zc_events_memory`` and ``zc_events_mock``."""

from ._mock import Call, EventsMock, UnexpectedCall

__all__ = ["Call", "EventsMock", "UnexpectedCall"]
