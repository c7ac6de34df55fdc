from __future__ import annotations

import pytest

import zc_events
from zc_events import BackendNotFound, ConfigurationError, EventClient, create_backend
from zc_events._registry import installed
from zc_events.backends.memory import MemoryBackend


def test_memory_is_registered_by_the_core_like_any_plugin() -> None:
    assert installed()["memory"] == "zc-events-core"
    assert isinstance(create_backend("memory"), MemoryBackend)


def test_unknown_backend_suggests_and_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("zc_events._registry._entry_points", lambda group: {})
    with pytest.raises(BackendNotFound) as info:
        EventClient("rabbitmq")
    message = str(info.value)
    assert "no backend named 'rabbitmq' is installed" in message
    assert "pip install zc-events-rabbitmq" in message
    with pytest.raises(
        BackendNotFound, match="Did you mean 'celery'.*pip install zc-events-celery"
    ):
        EventClient("celry")
    assert isinstance(info.value, ConfigurationError)


def test_backend_by_dotted_path() -> None:
    client = EventClient("zc_events.backends.memory:MemoryBackend", workers=1)
    assert isinstance(client.backend, MemoryBackend) and client.backend.workers == 1
    client.close()


def test_dotted_path_to_something_else_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="not a zc_events.Backend"):
        EventClient("zc_events.cli:main")


def test_configured_backend_options_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    zc_events.reset()
    try:
        zc_events.configure(backend="memory", backend_options={"workers": 3})
        backend = zc_events.default_client().backend
        assert isinstance(backend, MemoryBackend) and backend.workers == 3
        with pytest.raises(ConfigurationError, match="unknown option"):
            zc_events.configure(backend_options={"wrkers": 3})
    finally:
        zc_events.reset()
