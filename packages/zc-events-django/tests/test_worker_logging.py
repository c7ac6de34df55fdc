"""The worker command's log lines: stamped in the process's time zone, not Django's TIME_ZONE.

(The end-to-end check, a real worker started with ``TZ`` set, is in ``test_drf_errors.py``.)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from zc_events_django import _logging
from zc_events_django._logging import ProcessTimeFormatter, process_time_zone

# 2026-11-27 15:04:05.5 UTC
MOMENT = 1795791845.5


def record_at(created: float) -> logging.LogRecord:
    record = logging.LogRecord("zc_events", logging.INFO, __file__, 1, "hello", None, None)
    record.created = created
    record.msecs = (created - int(created)) * 1000
    return record


def test_formatter_stamps_in_its_zone() -> None:
    tokyo = ProcessTimeFormatter("%(asctime)s %(message)s", tz=ZoneInfo("Asia/Tokyo"))
    assert tokyo.format(record_at(MOMENT)) == "2026-11-28 00:04:05,500 hello"
    utc = ProcessTimeFormatter("%(asctime)s", "%H:%M %Z", tz=UTC)
    assert utc.format(record_at(MOMENT)) == "15:04 UTC"


@pytest.fixture
def started_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """``started_with(b"TZ=...")``: fake the environment the process started with."""

    def start(*variables: bytes) -> None:
        environ = tmp_path / "environ"
        environ.write_bytes(b"\0".join([b"PATH=/bin", *variables, b""]))
        monkeypatch.setattr(_logging, "INITIAL_ENVIRON", environ)

    yield start


def test_process_time_zone_is_the_starting_tz(
    started_with: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "America/Chicago")  # what Django wrote
    started_with(b"TZ=Asia/Tokyo")
    assert process_time_zone() == ZoneInfo("Asia/Tokyo")
    started_with(b"TZ=:Europe/Paris")
    assert process_time_zone() == ZoneInfo("Europe/Paris")
    started_with(b"TZ=")
    assert process_time_zone() is UTC
    started_with(b"TZ=JST-9")  # a POSIX rule, not a zone name: local time stays
    assert process_time_zone() is None
    started_with(b"TZ=America/Chicago")  # nobody changed it
    assert process_time_zone() is None


def test_without_tz_the_system_zone(
    started_with: Callable[..., None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TZ", "America/Chicago")
    started_with()
    tokyo = Path("/usr/share/zoneinfo/Asia/Tokyo")
    if not tokyo.exists():
        pytest.skip("no system zoneinfo")
    monkeypatch.setattr(_logging, "SYSTEM_ZONE", tokyo)
    formatter = ProcessTimeFormatter("%(asctime)s")
    assert formatter.format(record_at(MOMENT)) == "2026-11-28 00:04:05,500"
    monkeypatch.setattr(_logging, "SYSTEM_ZONE", tmp_path / "missing")
    assert process_time_zone() is UTC


def test_unknown_start_keeps_local_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_logging, "INITIAL_ENVIRON", tmp_path / "missing")  # not Linux
    assert process_time_zone() is None
    formatter = ProcessTimeFormatter("%(asctime)s")
    assert formatter.format(record_at(MOMENT)) == logging.Formatter("%(asctime)s").format(
        record_at(MOMENT)
    )


def test_command_leaves_the_services_logging_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    from zc_events_django.management.commands.zc_events_worker import configure_logging

    root = logging.getLogger()
    mine = logging.StreamHandler()
    monkeypatch.setattr(root, "handlers", [mine])
    configure_logging(1)
    assert root.handlers == [mine]

    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(logging.getLogger("zc_events"), "handlers", [])
    monkeypatch.setattr(root, "level", root.level)
    configure_logging(1)
    (handler,) = root.handlers
    assert isinstance(handler.formatter, ProcessTimeFormatter)
    assert root.level == logging.INFO
