"""Routing: which base URL serves a key (``ZC_EVENTS_HTTP_ROUTES``, backend option ``routes``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from zc_events import ConfigurationError, NoRouteError

__all__ = ["ENDPOINT", "Routes"]

#: The one path every service serves; the envelope is POSTed there.
ENDPOINT = "/zc-events"


class Routes:
    """Key patterns mapped to base URLs.

    A pattern is a key (``orders``), a prefix ending in ``*`` (``orders.*`` matches
    ``orders.list`` and ``orders.items.get``), or ``*`` alone (every other key). An exact key
    wins over any pattern, and a longer prefix over a shorter one, whatever the order given.
    """

    def __init__(self, routes: Mapping[str, Any], *, source: str = "routes") -> None:
        if not isinstance(routes, Mapping):
            raise ConfigurationError(
                f"{source} must map key patterns to base URLs, got {type(routes).__name__}"
            )
        self.exact: dict[str, str] = {}
        prefixes: list[tuple[str, str]] = []
        for pattern, url in routes.items():
            if not isinstance(pattern, str) or not pattern:
                raise ConfigurationError(f"{source}: a key pattern must be a non-empty string")
            endpoint = _endpoint(url, f"{source}[{pattern!r}]")
            star = pattern.find("*")
            if star == -1:
                self.exact[pattern] = endpoint
            elif star == len(pattern) - 1:
                prefixes.append((pattern[:-1], endpoint))
            else:
                raise ConfigurationError(
                    f"{source}: pattern {pattern!r} may only end in '*' "
                    "(use 'orders', 'orders.*' or '*')"
                )
        # Longest prefix first: 'orders.items.*' wins over 'orders.*', which wins over '*'.
        self.prefixes = sorted(prefixes, key=lambda item: len(item[0]), reverse=True)
        self._cache: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)

    def url_for(self, key: str) -> str:
        """The endpoint URL that serves ``key``; raises NoRouteError when no pattern matches."""
        url = self._cache.get(key)
        if url is not None:
            return url
        url = self.exact.get(key)
        if url is None:
            for prefix, endpoint in self.prefixes:
                if key.startswith(prefix):
                    url = endpoint
                    break
            else:
                patterns = ", ".join([*self.exact, *(p + "*" for p, _ in self.prefixes)])
                raise NoRouteError(
                    f"no HTTP route for key {key!r}: ZC_EVENTS_HTTP_ROUTES has "
                    f"{patterns or 'no routes'} (add the key, a pattern such as "
                    f"'{key.split('.')[0]}.*', or '*')",
                    key,
                )
        if len(self._cache) < 4096:
            self._cache[key] = url
        return url

    def __repr__(self) -> str:
        return f"<Routes exact={self.exact!r} prefixes={self.prefixes!r}>"


def _endpoint(url: object, where: str) -> str:
    if not isinstance(url, str):
        raise ConfigurationError(f"{where} must be a base URL string, got {url!r}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{where} must be an http:// or https:// base URL, got {url!r}")
    if parts.query or parts.fragment:
        raise ConfigurationError(f"{where} must not have a query or fragment: {url!r}")
    return url.rstrip("/") + ENDPOINT
