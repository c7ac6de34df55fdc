"""Routing keys to base URLs."""

from __future__ import annotations

import pytest

from zc_events import ConfigurationError, EventClient, NoRouteError, configure, reset
from zc_events_http import Routes


def test_exact_wins_then_the_longest_prefix_then_star() -> None:
    routes = Routes(
        {
            "*": "http://default",
            "orders.*": "http://orders/",
            "orders.items.*": "https://items:8443/api",
            "orders.special": "http://special",
        }
    )
    assert routes.url_for("orders.special") == "http://special/zc-events"
    assert routes.url_for("orders.items.get") == "https://items:8443/api/zc-events"
    assert routes.url_for("orders.list") == "http://orders/zc-events"
    assert routes.url_for("billing") == "http://default/zc-events"


def test_a_key_no_route_matches_fails_at_once_naming_it() -> None:
    routes = Routes({"orders.*": "http://orders"})
    with pytest.raises(NoRouteError, match="'billing'.*orders.\\*"):
        routes.url_for("billing")
    with EventClient("http", routes={"orders.*": "http://127.0.0.1:9"}) as client:
        with pytest.raises(NoRouteError, match="billing"):
            client.get("billing", timeout=1)
        with pytest.raises(NoRouteError):
            client.post_no_wait("billing")


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ({"orders": "ftp://x"}, "http:// or https://"),
        ({"orders": 5}, "base URL string"),
        ({"ord*ers": "http://x"}, "may only end in"),
        ({"": "http://x"}, "non-empty"),
        ({"orders": "http://x/?q=1"}, "query"),
        (["http://x"], "must map"),
    ],
)
def test_bad_routes_are_a_configuration_error(routes: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        EventClient("http", routes=routes)


def test_routes_come_from_the_setting() -> None:
    configure(ZC_EVENTS_HTTP_ROUTES={"*": "http://127.0.0.1:9"})
    try:
        client = EventClient("http")
        assert client.backend.options.routes.url_for("x") == "http://127.0.0.1:9/zc-events"  # type: ignore[attr-defined]
    finally:
        reset()


def test_unknown_options_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="routez"):
        EventClient("http", routez={})


def test_a_bad_server_option_stops_the_worker_with_one_line() -> None:
    import json
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "zc_events",
            "worker",
            "--backend",
            "http",
            "zc_events.testing.handlers",
        ],
        env={
            **__import__("os").environ,
            "ZC_EVENTS_BACKEND_OPTIONS": json.dumps({"bind": "127.0.0.1:0", "inline": "yes"}),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "option 'inline' must be true or false" in result.stderr
