"""Service markers for every package's tests.

A test marked ``rabbitmq``, ``redis``, ``celery``, ``s3`` or ``cluster`` is skipped, with the
reason, when its service cannot be reached, and fails instead when ``ZC_EVENTS_REQUIRE_SERVICES=1``
(CI sets it; ``.ci/run`` starts the local cluster of ``scripts/rabbitmq-cluster.sh``).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import socket

import pytest

SERVICES = {
    "rabbitmq": ("127.0.0.1", 5672),
    "redis": ("127.0.0.1", 6379),
    # the first node of scripts/rabbitmq-cluster.sh (nodes on 5681, 5682, 5683)
    "cluster": ("127.0.0.1", 5681),
}
NEEDS = {
    "rabbitmq": ["rabbitmq"],
    "redis": ["redis"],
    "celery": ["rabbitmq", "redis"],
    "s3": [],
    "cluster": ["cluster"],
}
PACKAGES = {
    "celery": ["celery", "redis"],
    "s3": ["boto3", "moto"],
    "rabbitmq": ["pika"],
    "cluster": ["pika"],
}
HINTS = {"cluster": " (start it with scripts/rabbitmq-cluster.sh start)"}


@functools.cache
def _reachable(service: str) -> str | None:
    host, port = SERVICES[service]
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError as exc:
        return f"{service} is not reachable on {host}:{port} ({exc}){HINTS.get(service, '')}"


@functools.cache
def _missing_package(marker: str) -> str | None:
    for name in PACKAGES.get(marker, []):
        if importlib.util.find_spec(name) is None:
            return f"the {name!r} package is not installed"
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in NEEDS:
        if item.get_closest_marker(marker) is None:
            continue
        reasons = [r for r in [_missing_package(marker), *map(_reachable, NEEDS[marker])] if r]
        if reasons:
            reason = f"{marker} test: " + "; ".join(reasons)
            if os.environ.get("ZC_EVENTS_REQUIRE_SERVICES") == "1":
                pytest.fail(f"{reason} (ZC_EVENTS_REQUIRE_SERVICES=1)", pytrace=False)
            pytest.skip(reason)
