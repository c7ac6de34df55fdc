"""Settings from django.conf, the app's adapter and autodiscovery, the management command."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

import zc_events
from zc_events import ConfigurationError, HandlerRegistry, Settings
from zc_events_django import ViewHandler, adapt, event_request, view_handler


@pytest.fixture(autouse=True)
def forget_configure() -> Iterator[None]:
    zc_events.reset()
    yield
    zc_events.reset()


def test_settings_come_from_django_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_NAME", "from-env")
    monkeypatch.setenv("ZC_EVENTS_TIMEOUT", "99")
    with override_settings(
        SERVICE_NAME="shop",
        ZC_EVENTS_BACKEND="memory",
        ZC_EVENTS_BACKEND_OPTIONS={"workers": 2},
        ZC_EVENTS_TIMEOUT=7,
        BROKER_URL="amqp://guest:guest@127.0.0.1:5672/legacy",
        EVENTS_REDIS_URL="redis://127.0.0.1:6379/3",
        JOB_MAPPING={"legacy-key": "shop.views.SearchView"},
        ZC_EVENTS_HANDLERS={"new-key": "shop.views.SearchView"},
    ):
        settings = Settings()
        assert settings.service_name == "shop"  # Django settings win over the environment
        assert settings.timeout == 7.0
        assert settings.backend_options == {"workers": 2}
        assert settings.broker_url({}) == "amqp://guest:guest@127.0.0.1:5672/legacy"
        assert settings.redis_url({}) == "redis://127.0.0.1:6379/3"
        assert set(settings.handlers) == {"legacy-key", "new-key"}
        assert zc_events.get_settings().service_name == "shop"
        zc_events.configure(service_name="configured")  # configure() wins over Django
        assert zc_events.get_settings().service_name == "configured"
    assert Settings().service_name == "from-env"  # without the Django setting: the environment


def test_malformed_django_setting_names_the_setting() -> None:
    with (
        override_settings(ZC_EVENTS_BACKEND_OPTIONS=["not", "a", "dict"]),
        pytest.raises(ConfigurationError, match="ZC_EVENTS_BACKEND_OPTIONS .*Django"),
    ):
        _ = Settings().backend_options


def test_app_ready_registers_the_adapter_and_autodiscovers_events() -> None:
    from shop import views

    assert adapt in HandlerRegistry.adapters
    assert "shop.events" in sys.modules
    assert isinstance(adapt(views.OrderViewSet), ViewHandler)
    assert isinstance(adapt(views.SearchView.as_view()), ViewHandler)
    assert isinstance(adapt(views.crash), ViewHandler)  # @api_view function
    assert adapt(views.plain_customer) is None  # a plain function could be a zc-events handler
    assert adapt(str) is None and adapt(lambda request: 1) is None


def test_view_handler_checks_its_view() -> None:
    handler = ViewHandler("shop.views.NoSuchView")
    request = zc_events.Request(zc_events.Envelope.create("x"))
    with pytest.raises(ConfigurationError, match="has no attribute 'shop.views.NoSuchView'|NoSuch"):
        handler(request)
    with pytest.raises(ConfigurationError, match="not a Django view class"):
        view_handler(dict)(request)
    assert event_request(object()) is None


def test_worker_command_reports_configuration_errors() -> None:
    with pytest.raises(CommandError, match="no backend named 'nope'"):
        call_command("zc_events_worker", backend="nope")
    with pytest.raises(CommandError, match="cannot import handler module 'no_such_module'"):
        call_command("zc_events_worker", "no_such_module", backend="memory")
