"""The ``zc-events`` command line: call, worker, health, dead, backends, demo."""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import _admin, _json
from ._client import EventClient
from ._exceptions import ConfigurationError, ZcEventsError
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


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

WORKER_DESCRIPTION = """\
Serve the handlers defined in MODULEs until SIGTERM or SIGINT, then finish the messages in
flight and exit 0.

MODULE is a Python module (dotted name, e.g. orders.handlers) that registers handlers with
@zc_events.handler("key"). The worker imports each one first; it finds modules in the current
directory, then on PYTHONPATH. Handlers listed in ZC_EVENTS_HANDLERS (or the old JOB_MAPPING)
are served as well.

SERVICE_NAME (environment or settings module) names this service. On broker backends it names
the queue the worker consumes: every worker started with the same SERVICE_NAME shares the work
of that one queue, so start more workers to serve more.

The backend is the transport: --backend, else the ZC_EVENTS_BACKEND setting (rabbitmq,
rabbitmq_legacy, ...; `zc-events backends` lists the installed ones). The worker refuses to run
on the default in-process "memory" backend unless you ask for it with --backend memory: nothing
outside this process can reach it. --concurrency, --prefetch, --url and --queue override
ZC_EVENTS_BACKEND_OPTIONS; a backend that has no such option says so.

Exit status: 0 after SIGTERM/SIGINT; 2 for a configuration problem (a module that cannot be
imported, no handlers, the memory backend, a broker that refuses the login or vhost); 1 for
other failures.
"""

WORKER_EXAMPLES = """\
examples:
  SERVICE_NAME=orders ZC_EVENTS_BACKEND=rabbitmq zc-events worker orders.handlers
  SERVICE_NAME=orders zc-events worker --backend rabbitmq --url amqp://user:pass@host:5672/%2F \\
      --concurrency 8 --prefetch 20 orders.handlers
  zc-events worker --backend memory -l DEBUG tests.handlers   # in-process, for tests only
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {text!r}")
    return value


def _logging_options(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    # On subcommands the defaults are SUPPRESS, so that `zc-events -v call` is not undone by
    # the subcommand's own default.
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS if sub else False,
        help="log at INFO level (the worker always does)",
    )
    parser.add_argument(
        "-l",
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=argparse.SUPPRESS if sub else None,
        metavar="LEVEL",
        help=f"log level: {', '.join(LOG_LEVELS)} (default: WARNING; INFO for the worker)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zc-events", description="Call and serve handlers over a message broker."
    )
    _logging_options(parser, sub=False)
    sub = parser.add_subparsers(dest="command", required=True)

    call = sub.add_parser("call", help="call a handler and print the Response as JSON")
    _logging_options(call, sub=True)
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

    worker = sub.add_parser(
        "worker",
        help="serve the handlers defined in MODULEs",
        description=WORKER_DESCRIPTION,
        epilog=WORKER_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _logging_options(worker, sub=True)
    worker.add_argument(
        "modules",
        nargs="*",
        metavar="MODULE",
        help="module(s) that register handlers, e.g. orders.handlers",
    )
    worker.add_argument(
        "--backend",
        default=None,
        metavar="NAME",
        help="transport to serve on (default: ZC_EVENTS_BACKEND; 'memory' only when given here)",
    )
    worker.add_argument(
        "-c",
        "--concurrency",
        type=_positive_int,
        metavar="N",
        help="messages handled at the same time (consumer threads); rabbitmq default 4",
    )
    worker.add_argument(
        "--prefetch",
        type=_positive_int,
        metavar="N",
        help="unacknowledged messages the broker sends each consumer ahead; rabbitmq default 10",
    )
    worker.add_argument(
        "--url",
        metavar="URL",
        help="broker URL, e.g. amqp://user:password@host:5672/%%2F (default: BROKER_URL)",
    )
    worker.add_argument(
        "-Q",
        "--queue",
        metavar="NAME",
        help="queue to consume (default: SERVICE_NAME)",
    )
    worker.add_argument(
        "--bind",
        metavar="HOST:PORT",
        help="address to serve on, for the http backend (default: ZC_EVENTS_HTTP_BIND, "
        "else 127.0.0.1:8000)",
    )
    worker.add_argument(
        "--health-file",
        metavar="PATH",
        default=None,
        help="touch PATH while consuming, remove it on stop (a liveness probe)",
    )
    worker.add_argument(
        "--health-interval",
        metavar="SECONDS",
        type=_positive,
        default=5.0,
        help="seconds between touches of --health-file (default 5)",
    )

    sub.add_parser("backends", help="list installed backends and their packages")
    sub.add_parser("demo", help="run the quickstart on the in-memory backend")
    _admin.add_parsers(sub, _positive)
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


#: Worker flags → the backend option each one sets.
WORKER_OPTIONS = {
    "concurrency": "--concurrency",
    "prefetch": "--prefetch",
    "url": "--url",
    "queue": "--queue",
    "bind": "--bind",
}


def _takes(cls: type, option: str) -> bool:
    """Whether some ``__init__`` of ``cls`` (or a base class) names ``option``."""
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            parameter = inspect.signature(init).parameters.get(option)
        except (TypeError, ValueError):
            continue
        if parameter is not None and parameter.kind in (
            inspect.Parameter.KEYWORD_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            return True
    return False


def _worker(args: argparse.Namespace) -> int:
    from ._api import get_settings, set_overrides
    from ._backend import create_backend
    from ._registry import load
    from ._worker import import_modules, serve

    # `python -m zc_events` finds modules in the current directory; the `zc-events` script
    # must too (as `celery -A proj` does).
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    settings = get_settings()
    import_modules(args.modules)  # first: a module may configure() the backend
    name = args.backend or settings.backend
    if name == "memory" and args.backend != "memory":
        _, source = settings.lookup("ZC_EVENTS_BACKEND")
        why = f"ZC_EVENTS_BACKEND is 'memory' ({source})" if source else "no backend is set"
        raise ConfigurationError(
            f"{why}, so the worker would serve on the in-process 'memory' backend, which "
            "nothing outside this process can reach: set ZC_EVENTS_BACKEND to a broker "
            "backend (e.g. rabbitmq) or pass --backend NAME; pass --backend memory to run on "
            "it anyway"
        )
    options = {
        option: getattr(args, option)
        for option in WORKER_OPTIONS
        if getattr(args, option) is not None
    }
    # Calls the handlers make (zc_events.get(...) in a handler) go over the worker's backend
    # and broker, not over whatever the settings name (by default the in-process memory one).
    defaults: dict[str, Any] = {}
    if args.backend is not None and args.backend != settings.backend:
        defaults["backend"] = name
    if args.url is not None:
        defaults["backend_options"] = {**settings.backend_options, "url": args.url}
    if defaults:
        set_overrides(defaults)
    try:
        backend = create_backend(name, settings, **options)
    except ConfigurationError as exc:
        cls = load(name, BACKENDS)
        refused = [WORKER_OPTIONS[o] for o in options if not _takes(cls, o)]
        if refused:
            raise ConfigurationError(
                f"the {name!r} backend does not take {', '.join(refused)}: drop the option(s) "
                "or choose a backend that has them (rabbitmq takes --concurrency, --prefetch, "
                "--url and --queue; http takes --bind and --concurrency)"
            ) from exc
        raise
    serve(
        backend,
        args.modules,
        settings=settings,
        health_file=args.health_file,
        health_interval=args.health_interval,
    )
    return 0


#: Longest time an INFO line of ``zc-events worker`` waits before it is written.
_LOG_FLUSH_SECONDS = 0.2


class _BatchedStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """``zc-events worker``'s log handler on standard error: lines below WARNING are written
    in batches, at most :data:`_LOG_FLUSH_SECONDS` late; a WARNING or worse is written at once,
    with everything before it.

    A worker logs a line per message (``ZC_EVENTS_LOG_MESSAGES``). Written one by one, each
    line is a ``write()`` that lets go of the GIL in the middle of a burst of messages; with
    several consumer threads the thread switches this causes cost more CPU than the line
    itself (measured on the RabbitMQ worker, 4 threads, 100 requests in flight: ~100 us per
    message, a third of the worker's time).
    """

    def __init__(self) -> None:
        stderr = sys.__stderr__
        assert stderr is not None
        stream = open(  # noqa: SIM115 - lives as long as the process; fd 2 stays open
            stderr.fileno(),
            "w",
            buffering=1 << 16,
            encoding=stderr.encoding,
            errors=stderr.errors,
            closefd=False,
        )
        super().__init__(stream)
        self._pending = False
        import threading

        threading.Thread(target=self._flush_often, name="zc-events-log-flush", daemon=True).start()

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if record.levelno >= logging.WARNING:
            self.write_out()
        else:
            self._pending = True

    def flush(self) -> None:
        """Nothing: StreamHandler calls this after every line (see :meth:`write_out`)."""

    def write_out(self) -> None:
        """Write the buffered lines now."""
        with self.lock:  # type: ignore[union-attr]
            self._pending = False
            self.stream.flush()

    def _flush_often(self) -> None:
        import time

        while True:
            time.sleep(_LOG_FLUSH_SECONDS)
            if self._pending:
                self.write_out()

    def close(self) -> None:
        self.write_out()
        super().close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 remote errors or failure, 2 usage or
    configuration errors)."""
    args = build_parser().parse_args(argv)
    if args.log_level is not None:
        level = getattr(logging, args.log_level)
    else:
        level = logging.INFO if args.verbose or args.command == "worker" else logging.WARNING
    log_format = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    root = logging.getLogger()
    batched: _BatchedStderrHandler | None = None
    if args.command == "worker" and not root.handlers and sys.stderr is sys.__stderr__:
        batched = _BatchedStderrHandler()
        batched.setFormatter(logging.Formatter(log_format))
        root.addHandler(batched)
        root.setLevel(level)
    else:
        logging.basicConfig(level=level, format=log_format)
    try:
        return _run(args)
    except (ConfigurationError, ZcEventsError, OSError) as exc:
        if batched is not None:  # the log lines before the error come before it
            batched.write_out()
        print(f"zc-events: error: {exc}", file=sys.stderr)
        # ConfigurationError: 2; others (e.g. a broker that refuses connections): 1
        return 2 if isinstance(exc, ConfigurationError) else 1
    except KeyboardInterrupt:
        return 130
    finally:
        if batched is not None:  # before a traceback, too
            batched.write_out()


def _run(args: argparse.Namespace) -> int:
    if args.command == "call":
        return _call(args)
    if args.command == "worker":
        return _worker(args)
    if args.command in _admin.COMMANDS:
        return _admin.run(args)
    if args.command == "backends":
        for name, dist in installed(BACKENDS).items():
            print(f"{name}\t{dist}")
        return 0
    from ._demo import main as demo

    demo()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
