"""``include("zc_events_http.django")`` in a real Django project, served by a real WSGI server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from zc_events import EventClient, NoRouteError
from zc_events.testing.conformance import wait_for_records

from .conftest import free_port

pytest.importorskip("django")

SITE = textwrap.dedent(
    """
    import sys
    from wsgiref.simple_server import make_server, WSGIServer
    from socketserver import ThreadingMixIn

    import django
    from django.conf import settings
    from django.urls import include, path

    urlpatterns = [path("svc/", include("zc_events_http.django"))]
    settings.configure(
        DEBUG=False,
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["127.0.0.1"],
        SECRET_KEY="test",
        MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],
        ZC_EVENTS_HANDLERS={"site.hello": "handlers.hello"},
        DATA_UPLOAD_MAX_MEMORY_SIZE=1024,
    )
    django.setup()
    import zc_events.testing.handlers  # the conformance handlers too
    from django.core.wsgi import get_wsgi_application

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    make_server("127.0.0.1", int(sys.argv[1]), get_wsgi_application(), Server).serve_forever()
    """
)


def test_the_django_include_serves_handlers(tmp_path: Path) -> None:
    (tmp_path / "site.py").write_text(SITE)
    (tmp_path / "handlers.py").write_text(
        "def hello(request):\n    return 'hello ' + request.data\n"
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZC_EVENTS_")}
    proc = subprocess.Popen(
        [sys.executable, "site.py", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.05)
        with EventClient("http", routes={"*": f"http://127.0.0.1:{port}/svc"}) as client:
            assert client.get("site.hello", data="django").data == "hello django"
            # a body above Django's DATA_UPLOAD_MAX_MEMORY_SIZE: the endpoint's own limit applies
            big = "x" * 10_000
            assert client.post("conformance.echo", data=big).data["data"] == big
            token = str(uuid.uuid4())
            client.post_no_wait("conformance.record", data={"token": token})
            assert wait_for_records(client, token)[0]["data"] == {"token": token}
            with pytest.raises(NoRouteError):
                client.get("site.nobody")
    finally:
        proc.terminate()
        proc.wait(30)
