"""``manage.py zc_events_worker``: serve this project's handlers with the configured backend."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

import zc_events
from zc_events_django._logging import ProcessTimeFormatter

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(verbosity: int) -> None:
    """Log to stderr when the service configured no logging (no handler on the root or the
    ``zc_events`` logger), stamped in the process's time zone: Django has moved ``TZ`` to
    ``settings.TIME_ZONE`` by now. A service's own logging configuration is left alone."""
    logger = logging.getLogger("zc_events")
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(ProcessTimeFormatter(LOG_FORMAT))
        logging.basicConfig(
            level=logging.WARNING if verbosity == 0 else logging.INFO, handlers=[handler]
        )
    elif verbosity > 1:
        logger.setLevel(logging.DEBUG)


class Command(BaseCommand):
    help = (
        "Serve zc-events handlers (ZC_EVENTS_HANDLERS, JOB_MAPPING and the apps' events.py) with "
        "the configured backend until SIGTERM/SIGINT, then finish in-flight messages."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "modules", nargs="*", metavar="MODULE", help="extra handler modules to import"
        )
        parser.add_argument(
            "--backend", default=None, help="backend name (default: ZC_EVENTS_BACKEND)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        configure_logging(int(options.get("verbosity", 1)))
        try:
            zc_events.serve(options["backend"], options["modules"])
        except zc_events.ConfigurationError as exc:  # e.g. a refused login: exit 2, as the CLI
            raise CommandError(str(exc), returncode=2) from exc
        except zc_events.ZcEventsError as exc:
            raise CommandError(str(exc)) from exc
        except OSError as exc:  # e.g. a broker that refuses connections
            raise CommandError(f"cannot serve: {exc}") from exc
