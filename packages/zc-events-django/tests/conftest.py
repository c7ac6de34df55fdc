"""A real Django project for the tests: ``project/`` (settings, urls, the ``shop`` app).

Configured with ``settings.configure()`` rather than ``DJANGO_SETTINGS_MODULE``, and without the
``ZC_EVENTS_*`` settings: the pytest process is shared with the other packages' tests, which
must not see this project's zc-events settings (tests add them with ``override_settings``).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import django
import pytest
from django.conf import settings

import zc_events
from zc_events.testing import WorkerProcess, run_worker

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


@contextlib.contextmanager
def _manage_worker(
    tmp: Path,
    env: Mapping[str, str],
    ready: Callable[[], object],
    modules: Sequence[str] = (),
) -> Iterator[WorkerProcess]:
    """Run ``manage.py zc_events_worker [MODULE...]`` with ``env`` (its own sqlite file in
    ``tmp``, which is also on its path for ``modules``) until ``ready()`` succeeds; on exit
    SIGTERM it and check it exits 0.

    The caller creates its client and deletes its broker objects.
    """
    project_env = {
        "DJANGO_SETTINGS_MODULE": "zcdjango_test.settings",
        "ZCDJANGO_TEST_DB": str(tmp / "db.sqlite3"),
        **env,
    }
    manage = [sys.executable, str(PROJECT / "manage.py")]
    subprocess.run(
        [*manage, "migrate", "--run-syncdb", "-v0"],
        env={**os.environ, **project_env, "PYTHONPATH": str(PROJECT)},
        check=True,
    )
    with run_worker(
        argv=[*manage, "zc_events_worker", *modules],
        env=project_env,
        pythonpath=[PROJECT, tmp],
        ready=ready,
        timeout=120,
    ) as worker:
        yield worker
        assert worker.terminate(60) == 0, worker.output  # finish in-flight work, exit 0


@pytest.fixture(scope="session")
def manage_worker() -> Callable[..., contextlib.AbstractContextManager[WorkerProcess]]:
    """``with manage_worker(tmp, env, ready) as worker``: the test project's
    ``manage.py zc_events_worker`` in a subprocess, serving once ``ready()`` succeeds."""
    return _manage_worker
