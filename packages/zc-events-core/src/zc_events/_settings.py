"""Settings resolution.

First match wins: ``configure(**options)`` → the module named by ``ZC_EVENTS_SETTINGS`` → Django
settings when Django is configured → environment variables (dicts and lists as JSON).
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from . import _json
from ._exceptions import ConfigurationError
from ._mask import is_secret_name, mask_secrets

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "SHORT_NAMES", "Settings"]

#: ``configure()`` short names and the settings they stand for.
SHORT_NAMES: dict[str, str] = {
    "backend": "ZC_EVENTS_BACKEND",
    "backend_options": "ZC_EVENTS_BACKEND_OPTIONS",
    "handlers": "ZC_EVENTS_HANDLERS",
    "timeout": "ZC_EVENTS_TIMEOUT",
    "middleware": "ZC_EVENTS_MIDDLEWARE",
    "middleware_options": "ZC_EVENTS_MIDDLEWARE_OPTIONS",
    "service_name": "SERVICE_NAME",
    "send_tracebacks": "ZC_EVENTS_SEND_TRACEBACKS",
    "max_message_bytes": "ZC_EVENTS_MAX_MESSAGE_BYTES",
    "log_messages": "ZC_EVENTS_LOG_MESSAGES",
    "max_deliveries": "ZC_EVENTS_MAX_DELIVERIES",
    "dead_letter_failed_no_wait": "ZC_EVENTS_DEAD_LETTER_FAILED_NO_WAIT",
}

DEFAULT_BACKEND = "memory"
DEFAULT_TIMEOUT = 30.0
DEFAULT_AMQP_URL = "amqp://guest:guest@localhost:5672/%2F"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_DELIVERIES = 5
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

_MISSING: Any = object()


def normalise_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Map ``configure()`` keyword names to setting names, rejecting unknown short names."""
    out: dict[str, Any] = {}
    for name, value in options.items():
        if name in SHORT_NAMES:
            out[SHORT_NAMES[name]] = value
        elif name.isupper():
            out[name] = value
        else:
            close = difflib.get_close_matches(name, SHORT_NAMES, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(
                f"unknown setting {name!r}.{hint} configure() takes "
                f"{', '.join(SHORT_NAMES)} or any setting by its upper-case name."
            )
    return out


def global_settings() -> Settings:
    """The process-wide settings that ``configure()`` writes to and clients use by default."""
    return _GLOBAL


class Settings:
    """Lazy, layered settings. Values are read on access, so later changes are seen."""

    def __init__(self, overrides: Mapping[str, Any] | None = None) -> None:
        self.overrides: dict[str, Any] = dict(overrides or {})
        self._module: ModuleType | None = None
        self._module_name: str | None = None

    # -- sources -------------------------------------------------------------------------
    def _settings_module(self) -> ModuleType | None:
        name = self.overrides.get("ZC_EVENTS_SETTINGS") or os.environ.get("ZC_EVENTS_SETTINGS")
        if not name:
            return None
        if name != self._module_name:
            try:
                self._module = importlib.import_module(name)
            except ImportError as exc:
                raise ConfigurationError(
                    f"ZC_EVENTS_SETTINGS names module {name!r}, which cannot be imported: {exc}"
                ) from exc
            self._module_name = name
        return self._module

    @staticmethod
    def _django_settings() -> Any:
        if "django" not in sys.modules:  # never import Django just to look
            return None
        try:
            from django.conf import settings as dj
        except ImportError:  # pragma: no cover
            return None
        return dj if dj.configured else None

    def lookup(self, name: str) -> tuple[Any, str]:
        """Return ``(value, source)``; value is ``_MISSING`` when no source sets ``name``."""
        if name in self.overrides:
            return self.overrides[name], "configure()"
        module = self._settings_module()
        if module is not None and hasattr(module, name):
            return getattr(module, name), f"settings module {module.__name__}"
        dj = self._django_settings()
        if dj is not None and hasattr(dj, name):
            return getattr(dj, name), "Django settings"
        if name in os.environ:
            return os.environ[name], "environment"
        return _MISSING, ""

    # -- typed access --------------------------------------------------------------------
    def get(self, name: str, default: Any = _MISSING) -> Any:
        """The raw value of ``name``; raises ConfigurationError if unset and no default."""
        value, _ = self.lookup(name)
        if value is _MISSING:
            if default is _MISSING:
                raise ConfigurationError(
                    f"setting {name} is required but not set (configure({name}=...), "
                    f"a ZC_EVENTS_SETTINGS module, Django settings or the environment)"
                )
            return default
        return value

    def _structured(self, name: str, kind: type, default: Any) -> Any:
        value, source = self.lookup(name)
        if value is _MISSING:
            return default
        if isinstance(value, str) and kind is not str:
            try:
                value = _json.loads(value)
            except ValueError as exc:
                raise ConfigurationError(
                    f"setting {name} from the {source} is not valid JSON: {exc}"
                ) from exc
        if kind is list and isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, kind):
            shown = "***" if is_secret_name(name) else repr(mask_secrets(value))
            raise ConfigurationError(
                f"setting {name} (from {source}) must be a {kind.__name__}, "
                f"got {type(value).__name__}: {shown}"
            )
        return value

    def get_str(self, name: str, default: Any = _MISSING) -> Any:
        """A non-empty string setting."""
        value = self.get(name, default)
        if value is default:
            return value
        if not isinstance(value, str) or not value:
            shown = "***" if is_secret_name(name) else repr(mask_secrets(value))
            raise ConfigurationError(f"setting {name} must be a non-empty string, got {shown}")
        return value

    def get_bool(self, name: str, default: bool) -> bool:
        """A boolean setting: a bool, or in the environment 1/0, true/false, yes/no, on/off."""
        value, source = self.lookup(name)
        if value is _MISSING:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigurationError(
            f"setting {name} (from {source}) must be true or false (1/0, yes/no, on/off), "
            f"got {value!r}"
        )

    def get_dict(self, name: str) -> dict[str, Any]:
        """A dict setting (JSON in the environment); ``{}`` when unset."""
        result: dict[str, Any] = self._structured(name, dict, {})
        return result

    def get_list(self, name: str) -> list[Any]:
        """A list setting (JSON in the environment); ``[]`` when unset."""
        result: list[Any] = self._structured(name, list, [])
        return result

    def get_float(self, name: str, default: float) -> float:
        """A positive number setting."""
        value, source = self.lookup(name)
        if value is _MISSING:
            return default
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"setting {name} (from {source}) must be a number, got {value!r}"
            ) from None
        if isinstance(value, bool) or not number > 0:
            raise ConfigurationError(f"setting {name} must be a positive number, got {value!r}")
        return number

    def get_int(self, name: str, default: int) -> int:
        """An int >= 1 setting (a whole float such as ``1e6`` is accepted)."""
        value, source = self.lookup(name)
        if value is _MISSING:
            return default
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if isinstance(value, bool) or number < 1 or (isinstance(value, float) and value != number):
            raise ConfigurationError(
                f"setting {name} (from {source}) must be an int >= 1, got {value!r}"
            )
        return number

    # -- the settings (listed in the README) ---------------------------------------------
    @property
    def backend(self) -> str:
        """Entry-point name of the backend (``ZC_EVENTS_BACKEND``)."""
        name: str = self.get_str("ZC_EVENTS_BACKEND", DEFAULT_BACKEND)
        return name

    @property
    def backend_options(self) -> dict[str, Any]:
        """Keyword options for the backend (``ZC_EVENTS_BACKEND_OPTIONS``)."""
        return self.get_dict("ZC_EVENTS_BACKEND_OPTIONS")

    @property
    def handlers(self) -> dict[str, Any]:
        """Legacy ``JOB_MAPPING`` merged with ``ZC_EVENTS_HANDLERS`` (the latter wins)."""
        return {**self.get_dict("JOB_MAPPING"), **self.get_dict("ZC_EVENTS_HANDLERS")}

    @property
    def timeout(self) -> float:
        """Default seconds to wait for a reply (``ZC_EVENTS_TIMEOUT``)."""
        return self.get_float("ZC_EVENTS_TIMEOUT", DEFAULT_TIMEOUT)

    @property
    def middleware(self) -> list[Any]:
        """Middleware names, dotted paths or instances (``ZC_EVENTS_MIDDLEWARE``)."""
        return self.get_list("ZC_EVENTS_MIDDLEWARE")

    @property
    def middleware_options(self) -> dict[str, Any]:
        """Per-middleware keyword options (``ZC_EVENTS_MIDDLEWARE_OPTIONS``)."""
        return self.get_dict("ZC_EVENTS_MIDDLEWARE_OPTIONS")

    @property
    def send_tracebacks(self) -> bool:
        """Put the server's traceback in error responses (``ZC_EVENTS_SEND_TRACEBACKS``).

        Off by default; when it is not set, Django's ``DEBUG`` decides.
        """
        value, _ = self.lookup("ZC_EVENTS_SEND_TRACEBACKS")
        if value is _MISSING:
            dj = self._django_settings()
            return bool(getattr(dj, "DEBUG", False)) if dj is not None else False
        return self.get_bool("ZC_EVENTS_SEND_TRACEBACKS", False)

    @property
    def log_messages(self) -> bool:
        """One INFO line per handled message (``ZC_EVENTS_LOG_MESSAGES``, default on)."""
        return self.get_bool("ZC_EVENTS_LOG_MESSAGES", True)

    @property
    def max_message_bytes(self) -> int:
        """Largest encoded message sent or accepted (``ZC_EVENTS_MAX_MESSAGE_BYTES``, 16 MiB)."""
        return self.get_int("ZC_EVENTS_MAX_MESSAGE_BYTES", DEFAULT_MAX_MESSAGE_BYTES)

    @property
    def service_name(self) -> str:
        """``SERVICE_NAME``; required by broker backends."""
        name: str = self.get_str("SERVICE_NAME")
        return name

    def broker_url(self, options: Mapping[str, Any]) -> str:
        """AMQP URL: ``backend_options['url']``, ``BROKER_URL``, ``CELERY_BROKER_URL``, default.

        Several nodes of a cluster are separated by ``;`` (as kombu does); a list or tuple of
        URLs is joined that way.
        """
        url = (
            options.get("url")
            or self.get("BROKER_URL", None)
            or self.get("CELERY_BROKER_URL", None)
        )
        if isinstance(url, list | tuple):
            url = ";".join(str(part).strip() for part in url if str(part).strip())
        return str(url or DEFAULT_AMQP_URL)

    def redis_url(self, options: Mapping[str, Any]) -> str:
        """Redis URL: ``backend_options['redis_url']``, ``EVENTS_REDIS_URL``, default."""
        url = options.get("redis_url") or self.get("EVENTS_REDIS_URL", None)
        return str(url or DEFAULT_REDIS_URL)

    def events_exchange(self, option: object = None, *, who: str = "legacy backend") -> str:
        """The fanout exchange of the zc_events 0.4 wire: ``option``, else ``EVENTS_EXCHANGE``.

        Required (no default: a name that differs from the fleet's exchange would drop every
        message). Raises ConfigurationError naming the setting; ``who`` names the component.
        """
        value = option if option is not None else self.get("EVENTS_EXCHANGE", None)
        if value is None or value == "":
            raise ConfigurationError(
                f"the {who} needs the fanout exchange the fleet shares (the old library's "
                "value): set EVENTS_EXCHANGE, or pass events_exchange="
            )
        if not isinstance(value, str):
            raise ConfigurationError(f"setting EVENTS_EXCHANGE must be a string, got {value!r}")
        return value

    def notifications_exchange(self, option: object = None, *, who: str = "legacy backend") -> str:
        """The topic exchange of the zc_events 0.4 notifications (``send_email`` and the text,
        push and slack kinds): ``option``, else ``NOTIFICATIONS_EXCHANGE``.

        Required where notifications are published or consumed (no default, as for
        :meth:`events_exchange`). Raises ConfigurationError naming the setting.
        """
        value = option if option is not None else self.get("NOTIFICATIONS_EXCHANGE", None)
        if value is None or value == "":
            raise ConfigurationError(
                f"the {who} needs the topic exchange the fleet's notifications go through (the "
                "old library's value): set NOTIFICATIONS_EXCHANGE, or pass "
                "notifications_exchange="
            )
        if not isinstance(value, str):
            raise ConfigurationError(
                f"setting NOTIFICATIONS_EXCHANGE must be a string, got {value!r}"
            )
        return value

    @property
    def max_deliveries(self) -> int:
        """Deliveries of one message before a worker dead-letters it
        (``ZC_EVENTS_MAX_DELIVERIES``, default 5)."""
        return self.get_int("ZC_EVENTS_MAX_DELIVERIES", DEFAULT_MAX_DELIVERIES)

    @property
    def dead_letter_failed_no_wait(self) -> bool:
        """Dead-letter a ``*_no_wait`` message whose handler failed, with the error, instead of
        acknowledging it (``ZC_EVENTS_DEAD_LETTER_FAILED_NO_WAIT``, default True)."""
        return self.get_bool("ZC_EVENTS_DEAD_LETTER_FAILED_NO_WAIT", True)


_GLOBAL = Settings()
