"""The ``zc-events`` command line: call, worker, backends, demo."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from . import _json
from ._client import EventClient
from ._exceptions import ZcEventsError
from ._registry import BACKENDS, installed


def _header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"header must look like name=value, got {text!r}")
    return name, value


def _json_arg(text: str) -> Any:
    try:
        return _json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--data is not valid JSON: {exc}") from exc


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zc-events", description="Call and serve handlers over a message broker."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    call = sub.add_parser("call", help="call a handler and print the Response as JSON")
    call.add_argument("key")
    call.add_argument(
        "--method",
        "-X",
        default="GET",
        type=str.upper,
        choices=["GET", "POST", "PUT", "PATCH", "DELETE"],
    )
    call.add_argument("--data", "-d", type=_json_arg, default=None, help="JSON body")
    call.add_argument(
        "--header",
        "-H",
        type=_header,
        action="append",
        default=[],
        help="header name=value (repeatable)",
    )
    call.add_argument("--timeout", type=_positive, default=None, help="seconds to wait")
    call.add_argument("--backend", default=None, help="backend name (default: settings)")
    call.add_argument("--no-wait", action="store_true", help="fire and forget")

    worker = sub.add_parser("worker", help="serve the handlers defined in MODULEs")
    worker.add_argument("modules", nargs="*", metavar="MODULE")
    worker.add_argument("--backend", default=None, help="backend name (default: settings)")

    sub.add_parser("backends", help="list installed backends and their packages")
    sub.add_parser("demo", help="run the quickstart on the in-memory backend")
    return parser


def _call(args: argparse.Namespace) -> int:
    with EventClient(args.backend) as client:
        headers = dict(args.header)
        if args.no_wait:
            message_id = client.request_no_wait(args.method, args.key, args.data, headers)
            print(json.dumps({"id": message_id}))
            return 0
        response = client.request(args.method, args.key, args.data, headers, timeout=args.timeout)
    print(json.dumps(response.to_dict(), indent=2, ensure_ascii=False))
    return 1 if response.has_errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 remote errors or failure, 2 usage)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose or args.command == "worker" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "call":
            return _call(args)
        if args.command == "worker":
            from ._worker import serve

            serve(args.backend, args.modules)
            return 0
        if args.command == "backends":
            for name, dist in installed(BACKENDS).items():
                print(f"{name}\t{dist}")
            return 0
        from ._demo import main as demo

        demo()
        return 0
    except ZcEventsError as exc:
        print(f"zc-events: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. a broker that refuses connections
        print(f"zc-events: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
