"""Log lines stamped in the time zone the process started with, not Django's ``TIME_ZONE``.

Loading a settings module, Django writes ``settings.TIME_ZONE`` (``America/Chicago`` when the
project does not set it) into the ``TZ`` environment variable and calls ``time.tzset()``, so that
naive datetimes follow the setting. Logging's ``%(asctime)s`` uses the same local time, so a
worker in a UTC container would stamp its lines in Chicago time. The worker command's own log
handler uses :class:`ProcessTimeFormatter` instead; the process's ``TZ`` stays as Django set it.

The zone the process started with is read from ``/proc/self/environ`` (the environment at
``exec`` time, which later changes do not touch): its ``TZ`` — a zone name such as
``Europe/Paris``, ``:Europe/Paris`` or a zone file path — or, without ``TZ``, ``/etc/localtime``
(UTC when missing), as the C library reads them. Where that file does not exist (not Linux), or
``TZ`` is a POSIX rule string such as ``JST-9`` that is not a zone name, log lines keep the
current local time.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["ProcessTimeFormatter", "process_time_zone"]

INITIAL_ENVIRON = Path("/proc/self/environ")
SYSTEM_ZONE = Path("/etc/localtime")


class _Unknown:
    pass


_UNKNOWN = _Unknown()


def _initial_tz() -> str | _Unknown | None:
    """``TZ`` as it was when the process started (None: unset), or ``_UNKNOWN``."""
    try:
        environ = INITIAL_ENVIRON.read_bytes()
    except OSError:
        return _UNKNOWN
    for item in environ.split(b"\0"):
        if item.startswith(b"TZ="):
            return item[3:].decode("utf-8", "replace")
    return None


def _zone_file(path: Path) -> tzinfo | None:
    try:
        with path.open("rb") as f:
            return ZoneInfo.from_file(f, key=str(path))
    except (OSError, ValueError):
        return None


def _zone(value: str | None) -> tzinfo | None:
    """The zone a ``TZ`` value names, as the C library reads it (None: not a zone we can read)."""
    if value is None:  # no TZ: the system's zone, UTC when there is none
        return _zone_file(SYSTEM_ZONE) if SYSTEM_ZONE.exists() else UTC
    name = value[1:] if value.startswith(":") else value
    if not name:
        return UTC
    if name.startswith("/"):
        return _zone_file(Path(name))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def process_time_zone() -> tzinfo | None:
    """The time zone this process started with, when it is no longer the local one.

    None when ``TZ`` is what the process started with (nobody changed it), or when the starting
    zone cannot be told (see the module docstring): then local time is the right stamp.
    """
    started = _initial_tz()
    if isinstance(started, _Unknown) or started == os.environ.get("TZ"):
        return None
    return _zone(started)


class ProcessTimeFormatter(logging.Formatter):
    """A Formatter whose ``%(asctime)s`` is in ``tz`` (default: :func:`process_time_zone`).

    Same text as :class:`logging.Formatter` (``2026-11-27 15:04:05,123``), in that zone.
    """

    def __init__(
        self, fmt: str | None = None, datefmt: str | None = None, *, tz: tzinfo | None = None
    ) -> None:
        super().__init__(fmt, datefmt)
        self.tz = tz if tz is not None else process_time_zone()

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if self.tz is None:
            return super().formatTime(record, datefmt)
        moment = datetime.fromtimestamp(record.created, self.tz)
        if datefmt:
            return moment.strftime(datefmt)
        text = moment.strftime(self.default_time_format)
        if self.default_msec_format:
            text = self.default_msec_format % (text, record.msecs)
        return text
