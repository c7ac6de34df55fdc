from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest

import zc_events
from zc_events import ConfigurationError, Settings


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("ZC_EVENTS_SETTINGS", "ZC_EVENTS_BACKEND", "ZC_EVENTS_TIMEOUT", "SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    zc_events.reset()
    yield
    zc_events.reset()


def test_defaults() -> None:
    s = Settings()
    assert (s.backend, s.timeout, s.backend_options, s.middleware) == ("memory", 30.0, {}, [])
    assert s.broker_url({}) == "amqp://guest:guest@localhost:5672/%2F"
    assert s.redis_url({}) == "redis://localhost:6379/0"


def test_precedence_configure_module_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("zc_test_settings_mod")
    module.ZC_EVENTS_TIMEOUT = 5  # type: ignore[attr-defined]
    module.SERVICE_NAME = "from-module"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setenv("ZC_EVENTS_SETTINGS", module.__name__)
    monkeypatch.setenv("ZC_EVENTS_TIMEOUT", "7")
    monkeypatch.setenv("EVENTS_EXCHANGE", "from-env")
    s = Settings()
    assert s.timeout == 5 and s.service_name == "from-module"
    assert s.get("EVENTS_EXCHANGE") == "from-env"
    s.overrides["ZC_EVENTS_TIMEOUT"] = 2
    assert s.timeout == 2


def test_environment_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZC_EVENTS_BACKEND_OPTIONS", '{"url": "amqp://x"}')
    monkeypatch.setenv("ZC_EVENTS_MIDDLEWARE", '["hmac_signing"]')
    s = Settings()
    assert s.backend_options == {"url": "amqp://x"}
    assert s.broker_url(s.backend_options) == "amqp://x"
    assert s.middleware == ["hmac_signing"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "ZC_EVENTS_BACKEND_OPTIONS",
            "{url: 1}",
            "ZC_EVENTS_BACKEND_OPTIONS from the environment is not valid JSON",
        ),
        ("ZC_EVENTS_BACKEND_OPTIONS", "[1]", "must be a dict"),
        ("ZC_EVENTS_TIMEOUT", "soon", "ZC_EVENTS_TIMEOUT .* must be a number"),
        ("ZC_EVENTS_TIMEOUT", "-1", "must be a positive number"),
    ],
)
def test_malformed_settings_are_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    s = Settings()
    with pytest.raises(ConfigurationError, match=message):
        _ = s.backend_options if "OPTIONS" in name else s.timeout


def test_missing_required_setting_is_named() -> None:
    with pytest.raises(ConfigurationError, match="SERVICE_NAME is required"):
        _ = Settings().service_name


def test_missing_settings_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZC_EVENTS_SETTINGS", "no_such_settings_module")
    with pytest.raises(
        ConfigurationError, match="ZC_EVENTS_SETTINGS names module 'no_such_settings_module'"
    ):
        Settings().backend  # noqa: B018


def test_configure_rejects_unknown_names() -> None:
    with pytest.raises(
        ConfigurationError, match="unknown setting 'backnd'. Did you mean 'backend'"
    ):
        zc_events.configure(backnd="memory")


def test_configure_takes_short_and_upper_case_names() -> None:
    zc_events.configure(timeout=3, service_name="svc", EVENTS_EXCHANGE="ex")
    s = zc_events.get_settings()
    assert (s.timeout, s.service_name, s.get("EVENTS_EXCHANGE")) == (3.0, "svc", "ex")
    assert zc_events.default_client().timeout == 3.0
    zc_events.reset()
    assert zc_events.get_settings().timeout == 30.0
