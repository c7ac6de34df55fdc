"""Operator commands of the ``zc-events`` command line: ``health`` and ``dead list|replay``."""

from __future__ import annotations

import argparse
import time
from typing import Any

from ._backend import DeadLetter, create_backend
from ._client import EventClient
from ._exceptions import NoRouteError, RequestTimeout, ZcEventsError
from ._handlers import health_key

__all__ = ["COMMANDS", "add_parsers", "run"]

COMMANDS = ("health", "dead")


def add_parsers(sub: Any, positive: Any) -> None:
    """Add the ``health`` and ``dead`` subcommands to ``sub`` (an argparse subparsers object)."""
    health = sub.add_parser(
        "health",
        help="exit 0 if a worker of SERVICE answers within --timeout, else 1",
        description=(
            "Ask a live worker of SERVICE to answer its health check key "
            "(zc-events.health.SERVICE). Prints one line; exits 0 when a worker answered within "
            "--timeout seconds, 1 otherwise."
        ),
    )
    health.add_argument("service", metavar="SERVICE")
    health.add_argument("--timeout", type=positive, default=5.0, help="seconds (default 5)")
    health.add_argument("--backend", default=None, help="backend name (default: settings)")

    dead = sub.add_parser("dead", help="list or replay a service's dead letters")
    actions = dead.add_subparsers(dest="action", required=True)
    listing = actions.add_parser(
        "list", help="show the messages in SERVICE's dead-letter queue (left in place)"
    )
    listing.add_argument("service", metavar="SERVICE")
    listing.add_argument("--backend", default=None, help="backend name (default: settings)")
    replay = actions.add_parser(
        "replay",
        help="publish dead letters to their key again; each is removed once the broker has it",
    )
    replay.add_argument("service", metavar="SERVICE")
    replay.add_argument(
        "--id", dest="ids", action="append", default=[], metavar="ID", help="(repeatable)"
    )
    replay.add_argument("--all", action="store_true", help="replay every dead letter")
    replay.add_argument("--backend", default=None, help="backend name (default: settings)")


def run(args: argparse.Namespace) -> int:
    """Run a command added by :func:`add_parsers`; return the exit status."""
    if args.command == "health":
        return _health(args.service, args.timeout, args.backend)
    if args.action == "list":
        return _dead_list(args.service, args.backend)
    return _dead_replay(args.service, args.ids, args.all, args.backend)


def _health(service: str, timeout: float, backend: str | None) -> int:
    start = time.perf_counter()
    try:
        with EventClient(backend, middleware=[]) as client:
            response = client.get(health_key(service), timeout=timeout)
    except RequestTimeout:
        print(f"unhealthy: no worker of {service!r} answered within {timeout:g} s")
        return 1
    except NoRouteError:
        print(f"unhealthy: no worker of {service!r} is listening (nothing serves its queue)")
        return 1
    except (ZcEventsError, OSError) as exc:
        print(f"unhealthy: {service!r}: {exc}")
        return 1
    ms = (time.perf_counter() - start) * 1000
    data = response.data if isinstance(response.data, dict) else {}
    if response.has_errors or data.get("status") != "ok":
        print(f"unhealthy: {service!r} answered with an error: {response.errors or data}")
        return 1
    print(
        f"ok: {service!r} worker pid {data.get('pid')} on {data.get('host')} "
        f"answered in {ms:.1f} ms"
    )
    return 0


def _table(letters: list[DeadLetter]) -> list[str]:
    rows = [("ID", "KEY", "METHOD", "FIRST SEEN", "SIZE", "REASON")]
    rows += [
        (
            d.id,
            d.key or "-",
            d.method or "-",
            d.first_seen or "-",
            str(d.size),
            " ".join(d.reason.split()),
        )
        for d in letters
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[5]])
        for row in rows
    ]


def _dead_list(service: str, backend: str | None) -> int:
    with create_backend(backend) as instance:
        letters = instance.dead_letters(service)
    if not letters:
        print(f"no dead letters for {service!r}")
        return 0
    for line in _table(letters):
        print(line)
    print(f"{len(letters)} dead letter(s) for {service!r}")
    return 0


def _dead_replay(service: str, ids: list[str], everything: bool, backend: str | None) -> int:
    if not ids and not everything:
        raise ZcEventsError("say which dead letters to replay: --id ID (repeatable) or --all")
    if ids and everything:
        raise ZcEventsError("give either --id or --all, not both")
    # The client's middleware re-signs (hmac_signing) and traces (opentelemetry) the copies.
    with EventClient(backend) as client:
        replayed = client.backend.replay_dead_letters(
            service, None if everything else ids, prepare=client.outgoing
        )
    for message_id in replayed:
        print(f"replayed {message_id}")
    missing = [i for i in ids if i not in replayed]
    if missing:
        print(f"not found in {service!r}'s dead letters: {', '.join(missing)}")
        return 1
    print(f"{len(replayed)} dead letter(s) of {service!r} replayed")
    return 0
