"""pytest plugin (entry point ``pytest11: zc_events``): fixtures for tests of services.

``zc_events_memory``: the default client on a fresh memory backend; pending ``*_no_wait``
messages are drained after the test and configure() settings are forgotten.
``zc_events_mock``: an :class:`~zc_events.testing.EventsMock` installed as the default backend;
fails the test on unexpected calls and on registered responses never called.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import zc_events
from zc_events.backends.memory import MemoryBackend

from ._mock import EventsMock


@pytest.fixture
def zc_events_memory() -> Iterator[zc_events.EventClient]:
    """The default client, on a fresh memory backend."""
    zc_events.reset()
    zc_events.configure(backend="memory")
    client = zc_events.default_client()
    try:
        yield client
    finally:
        if isinstance(client.backend, MemoryBackend):
            client.backend.join(timeout=10)
        zc_events.reset()


@pytest.fixture
def zc_events_mock() -> Iterator[EventsMock]:
    """An EventsMock installed as the default client's backend."""
    with EventsMock() as mock:
        yield mock
