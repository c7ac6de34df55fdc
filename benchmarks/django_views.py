"""Cost of serving a DRF view over zc-events, against the same view over Django's HTTP stack.

    python benchmarks/django_views.py [N]        (needs zc-events-django)

Prints p50/p99 in microseconds, in-process (no broker), for one small APIView: Django's test
``Client`` (the whole HTTP handler: middleware-free WSGI request, URL resolution, the view) as the
baseline, then ``ViewHandler`` called directly, then ``get`` on the memory backend inline (no
thread hand-off). A plain zc-events function handler on the same backend shows the floor.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import django
from django.conf import settings

settings.configure(
    SECRET_KEY="bench",
    ALLOWED_HOSTS=["testserver", "bench.internal"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "rest_framework",
        "zc_events_django",
    ],
    DATABASES={},
    MIDDLEWARE=[],
    REST_FRAMEWORK={"DEFAULT_AUTHENTICATION_CLASSES": [], "UNAUTHENTICATED_USER": None},
)
django.setup()

from django.test import Client  # noqa: E402
from django.urls import path  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

import zc_events  # noqa: E402
from zc_events import Envelope, EventClient, HandlerRegistry, Request  # noqa: E402
from zc_events.backends.memory import MemoryBackend  # noqa: E402
from zc_events_django import ViewHandler  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000


class Add(APIView):
    def get(self, request):
        return Response({"answer": int(request.query_params["x"]) + int(request.query_params["y"])})


def add(request: Request) -> dict[str, int]:
    return {"answer": request.data["x"] + request.data["y"]}


urlpatterns = [path("add/", Add.as_view())]


def measure(fn: Callable[[], object], n: int = N) -> tuple[float, float]:
    for _ in range(min(n, 500)):
        fn()
    samples = []
    clock = time.perf_counter
    for _ in range(n):
        t = clock()
        fn()
        samples.append(clock() - t)
    samples.sort()
    return samples[len(samples) // 2] * 1e6, samples[int(len(samples) * 0.99)] * 1e6


def main() -> None:
    http = Client()
    assert http.get("/add/?x=1&y=1").json() == {"answer": 2}
    handler = ViewHandler(Add)
    request = Request(Envelope.create("add", "GET", headers={"query_string": "x=1&y=1"}))
    assert handler(request).data == {"answer": 2}
    registry = HandlerRegistry({"add-view": Add, "add-fn": add})
    backend = MemoryBackend(dispatcher=zc_events.Dispatcher([registry]), inline=True)
    client = EventClient(backend)
    assert client.get("add-view", headers={"query_string": "x=1&y=1"}).data == {"answer": 2}

    rows = [
        ("Django test Client GET /add/ (baseline)", lambda: http.get("/add/?x=1&y=1")),
        ("ViewHandler(Add)(request)", lambda: handler(request)),
        (
            "memory inline get('add-view')",
            lambda: client.get("add-view", headers={"query_string": "x=1&y=1"}),
        ),
        (
            "memory inline get('add-fn') (plain handler)",
            lambda: client.get("add-fn", {"x": 1, "y": 1}),
        ),
    ]
    results = [(label, *measure(fn)) for label, fn in rows]
    base = results[0][1]
    print(f"N={N}, Django {django.get_version()}, in-process, shared machine: numbers are noisy")
    print(f"{'case':<46} {'p50 µs':>9} {'p99 µs':>9} {'p50 / baseline':>15}")
    for label, p50, p99 in results:
        print(f"{label:<46} {p50:>9.1f} {p99:>9.1f} {p50 / base:>15.2f}")
    client.close()


if __name__ == "__main__":
    main()
