"""The WSGI app behind a real WSGI server (the standard library's), called by the http backend."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from zc_events import EventClient, HandlerRegistry, NoRouteError, Request
from zc_events.testing.conformance import wait_for_records
from zc_events.testing.handlers import HANDLERS
from zc_events_http import wsgi_app


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def wsgi_url() -> Iterator[str]:
    registry = HandlerRegistry({key: HANDLERS.get(key) for key in HANDLERS})

    @registry.register("shout")
    def shout(request: Request) -> str:
        return str(request.data).upper()

    from zc_events import Dispatcher

    app = wsgi_app(Dispatcher([registry]))

    class Threaded(WSGIServer):
        daemon_threads = True

        def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
            threading.Thread(
                target=self.process_request_thread, args=(request, client_address), daemon=True
            ).start()

        def process_request_thread(self, request, client_address):  # type: ignore[no-untyped-def]
            try:
                self.finish_request(request, client_address)
            finally:
                self.shutdown_request(request)

    server = make_server("127.0.0.1", 0, app, server_class=Threaded, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        app.close()


def test_wsgi_round_trip_no_wait_and_no_route(wsgi_url: str) -> None:
    with EventClient("http", routes={"*": wsgi_url}) as client:
        assert client.post("shout", data="hi").data == "HI"
        token = str(uuid.uuid4())
        client.post_no_wait("conformance.record", data={"token": token})
        assert wait_for_records(client, token)[0]["data"] == {"token": token}
        with pytest.raises(NoRouteError):
            client.get("nobody")
        response = client.get("conformance.add", data={"x": 1})
        assert response.errors[0]["type"] == "KeyError"
