"""A real Django project for the tests: ``project/`` (settings, urls, the ``shop`` app).

Configured with ``settings.configure()`` rather than ``DJANGO_SETTINGS_MODULE``, and without the
``ZC_EVENTS_*`` settings: the pytest process is shared with the other packages' tests, which
must not see this project's zc-events settings (tests add them with ``override_settings``).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
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


@dataclass
class ManageWorker:
    """A running ``manage.py zc_events_worker`` of the test project."""

    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def _manage_worker(
    tmp: Path, env: Mapping[str, str], ready: Callable[[], object]
) -> Iterator[ManageWorker]:
    """Run ``manage.py zc_events_worker`` with ``env`` (its own sqlite file in ``tmp``) until
    ``ready()`` stops raising zc-events errors; on exit SIGTERM it and check it exits 0.

    The caller creates its client and deletes its broker objects.
    """
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "zcdjango_test.settings",
        "ZCDJANGO_TEST_DB": str(tmp / "db.sqlite3"),
        "PYTHONPATH": os.pathsep.join([str(PROJECT), os.environ.get("PYTHONPATH", "")]),
        **env,
    }
    manage = [sys.executable, str(PROJECT / "manage.py")]
    subprocess.run([*manage, "migrate", "--run-syncdb", "-v0"], env=full_env, check=True)
    log_path = tmp / "worker.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*manage, "zc_events_worker"], env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
    worker = ManageWorker(proc, log_path)
    try:
        deadline = time.monotonic() + 120
        while True:  # until the worker has bound its queue
            try:
                ready()
                break
            except zc_events.ZcEventsError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the worker did not start serving:\n{worker.log}")
                time.sleep(0.2)
        yield worker
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, worker.log  # finish in-flight work, exit 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def manage_worker() -> Callable[..., contextlib.AbstractContextManager[ManageWorker]]:
    """``with manage_worker(tmp, env, ready) as worker``: the test project's
    ``manage.py zc_events_worker`` in a subprocess, serving once ``ready()`` succeeds."""
    return _manage_worker
