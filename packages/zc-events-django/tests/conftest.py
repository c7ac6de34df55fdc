"""A real Django project for the tests: ``project/`` (settings, urls, the ``shop`` app).

Configured with ``settings.configure()`` rather than ``DJANGO_SETTINGS_MODULE``, and without the
``ZC_EVENTS_*`` settings: the pytest process is shared with the other packages' tests, which
must not see this project's zc-events settings (tests add them with ``override_settings``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import django
import pytest
from django.conf import settings

import zc_events

PROJECT = Path(__file__).parent / "project"
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

if not settings.configured:
    import zcdjango_test.settings as project_settings

    settings.configure(
        **{
            name: getattr(project_settings, name)
            for name in dir(project_settings)
            if name.isupper() and not name.startswith("ZC_EVENTS_")
        }
    )
    django.setup()


@pytest.fixture(scope="session")
def django_db() -> None:
    """Create the tables once, in the shared in-memory database."""
    from django.core.management import call_command

    call_command("migrate", run_syncdb=True, verbosity=0)


@pytest.fixture(autouse=True)
def clean_db(django_db: None) -> Iterator[None]:
    from django.contrib.auth.models import User
    from django.core.cache import cache

    cache.clear()
    yield
    from shop.models import Customer, Order

    Order.objects.all().delete()
    Customer.objects.all().delete()
    User.objects.all().delete()


@pytest.fixture
def project_handlers() -> Iterator[dict[str, Any]]:
    """The project's handlers: ``ZC_EVENTS_HANDLERS`` in Django settings and ``shop/events.py``."""
    from django.test import override_settings
    from zcdjango_test import settings as project_settings

    if "orders" not in zc_events.handlers:  # another test forgot every handler: register again
        importlib.reload(importlib.import_module("shop.views"))  # @zc_events.handler("echo")
        importlib.reload(importlib.import_module("shop.events"))
    with override_settings(ZC_EVENTS_HANDLERS=project_settings.ZC_EVENTS_HANDLERS):
        yield project_settings.ZC_EVENTS_HANDLERS


@pytest.fixture
def client(
    project_handlers: dict[str, Any], zc_events_memory: zc_events.EventClient
) -> zc_events.EventClient:
    """The default client on the memory backend, serving the test project's views."""
    return zc_events_memory


@pytest.fixture
def alice() -> str:
    """A user with a DRF token; returns the Authorization header value."""
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    user = User.objects.create_user("alice")
    return f"Token {Token.objects.create(user=user).key}"
