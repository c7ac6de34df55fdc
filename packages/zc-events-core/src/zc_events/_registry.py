"""Entry-point registries for backends and middleware: lazy, by name, helpful when wrong."""

from __future__ import annotations

import difflib
import importlib
import threading
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from ._exceptions import BackendNotFound, ConfigurationError

__all__ = ["import_string", "installed", "load"]

BACKENDS = "zc_events.backends"
MIDDLEWARE = "zc_events.middleware"

#: Where the backends and middleware this project publishes live, for "pip install" hints.
KNOWN_PACKAGES = {
    BACKENDS: {
        "memory": "zc-events-core",
        "rabbitmq": "zc-events-rabbitmq",
        "rabbitmq_legacy": "zc-events-rabbitmq",
        "celery": "zc-events-celery",
    },
    MIDDLEWARE: {"hmac_signing": "zc-events-core", "s3_claim_check": "zc-events-aws"},
}

_lock = threading.Lock()
_loaded: dict[tuple[str, str], Any] = {}


def import_string(path: str) -> Any:
    """Import ``pkg.module:attr`` or ``pkg.module.attr``; raise ConfigurationError if missing."""
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ConfigurationError(f"{path!r} is not a dotted path like 'package.module.name'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r} (from {path!r}): {exc}") from exc
    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigurationError(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


def _entry_points(group: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=group)}


def installed(group: str = BACKENDS) -> dict[str, str]:
    """Installed entry points of ``group``: name → distribution that provides it."""
    out = {}
    for name, ep in sorted(_entry_points(group).items()):
        dist = ep.dist.name if ep.dist is not None else "?"
        out[name] = dist
    return out


def load(name: str, group: str = BACKENDS) -> Any:
    """The object registered as ``name`` in ``group`` (cached), or a dotted path's target."""
    cache_key = (group, name)
    try:
        return _loaded[cache_key]
    except KeyError:
        pass
    with _lock:
        if cache_key in _loaded:
            return _loaded[cache_key]
        eps = _entry_points(group)
        if name in eps:
            try:
                obj = eps[name].load()
            except ImportError as exc:
                raise ConfigurationError(
                    f"{_kind(group)} {name!r} is installed but failed to import: {exc}"
                ) from exc
        elif "." in name or ":" in name:
            obj = import_string(name)
        else:
            raise _not_found(name, group, sorted(eps))
        _loaded[cache_key] = obj
        return obj


def _kind(group: str) -> str:
    return "backend" if group == BACKENDS else "middleware"


def _not_found(name: str, group: str, available: list[str]) -> ConfigurationError:
    kind = _kind(group)
    parts = [f"no {kind} named {name!r} is installed."]
    close = difflib.get_close_matches(name, available + list(KNOWN_PACKAGES[group]), n=1)
    if close and close[0] != name:
        parts.append(f"Did you mean {close[0]!r}?")
    package = KNOWN_PACKAGES[group].get(name) or (
        KNOWN_PACKAGES[group].get(close[0]) if close and close[0] not in available else None
    )
    if package:
        parts.append(f"Install it with: pip install {package}")
    parts.append(f"Installed: {', '.join(available) or 'none'}.")
    message = " ".join(parts)
    return BackendNotFound(message) if group == BACKENDS else ConfigurationError(message)


def clear_cache() -> None:
    """Forget loaded entry points (for tests)."""
    with _lock:
        _loaded.clear()
