"""JSON:API documents as attribute-style objects, with relationships and ``included`` resolved.

No Django needed. What the old ``wrap_resource_from_response`` did, without its crashes on empty
to-one relationships and reference cycles::

    from zc_events.jsonapi import wrap

    r = zc_events.get('orders', headers={'pk': '1', 'query_string': 'include=customer'})
    order = wrap(r)               # raises RemoteError if the call failed
    order.id, order.type          # '1', 'orders'
    order.total_price             # attribute "totalPrice" (or "total-price"), snake_cased
    order.customer.name           # to-one relationship, taken from "included" when present
    [i.sku for i in order.items]  # to-many relationship: a ResourceList
    order.customer.links.related  # the relationship's links, as the old library set them

Attribute and relationship names are snake_cased like ``inflection.underscore`` did
(``firstName`` and ``first-name`` become ``first_name``). The raw resource object stays in
``.data``. A related resource missing from ``included`` is a Resource with only ``id`` and ``type``.
Relationships resolve lazily on first access, so reference cycles in ``included`` are fine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from . import _json
from ._exceptions import RemoteError, ZcEventsError
from ._response import Response

__all__ = [
    "InvalidDocument",
    "Links",
    "Resource",
    "ResourceList",
    "underscore",
    "wrap",
    "wrap_response",
]

_Index = dict[tuple[str, str], dict[str, Any]]


class InvalidDocument(ZcEventsError, ValueError):
    """The value is not a JSON:API document (no ``data``, or malformed resource objects)."""


def underscore(word: str) -> str:
    """``firstName`` / ``first-name`` / ``FirstName`` → ``first_name`` (as ``inflection`` does)."""
    word = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", word)
    word = re.sub(r"([a-z\d])([A-Z])", r"\1_\2", word)
    return word.replace("-", "_").lower()


class Links:
    """A links object: each link is an attribute (``self``, ``related``, ``next``, ...).

    A link is a URL string, or a dict with ``href`` and ``meta``; a missing link is None.
    """

    def __init__(self, links: Mapping[str, Any]) -> None:
        self.__dict__.update({underscore(k): v for k, v in links.items()})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return None

    def __repr__(self) -> str:
        return f"Links({self.__dict__!r})"


class Resource:
    """One resource object: ``id``, ``type``, one attribute per JSON:API attribute and
    relationship (snake_cased), ``links`` and ``meta`` when present, and the raw object in ``data``.
    """

    id: str | None
    type: str | None
    data: dict[str, Any]
    links: Links | None
    meta: dict[str, Any] | None

    def __init__(self, obj: Mapping[str, Any], index: _Index | None = None) -> None:
        if not isinstance(obj, Mapping) or not isinstance(obj.get("type"), str):
            raise InvalidDocument(f"a resource object needs a string 'type', got {obj!r}")
        ident = _identity(obj)
        full = (index or {}).get(ident) if ident else None
        raw = dict(full if full is not None else obj)
        d = self.__dict__
        d["data"] = raw
        d["id"] = None if raw.get("id") is None else str(raw["id"])
        d["type"] = raw["type"]
        d["links"] = Links(raw["links"]) if isinstance(raw.get("links"), Mapping) else None
        d["meta"] = raw.get("meta")
        attributes = raw.get("attributes")
        attributes = {} if attributes is None else attributes
        if not isinstance(attributes, Mapping):
            raise InvalidDocument(f"'attributes' of {self!r} must be an object")
        relationships = raw.get("relationships")
        relationships = {} if relationships is None else relationships
        if not isinstance(relationships, Mapping):
            raise InvalidDocument(f"'relationships' of {self!r} must be an object")
        for name, value in attributes.items():
            d[underscore(name)] = value
        self._index = index or {}
        self._relationships = {underscore(k): v for k, v in relationships.items()}

    def __getattr__(self, name: str) -> Any:
        # Called only for names not set yet: relationships resolve here, once.
        relationships = self.__dict__.get("_relationships", {})
        if name in relationships:
            value = self._resolve(relationships[name])
            self.__dict__[name] = value
            return value
        if name.startswith("__"):
            raise AttributeError(name)
        known = sorted(k for k in [*self.__dict__, *relationships] if not k.startswith("_"))
        raise AttributeError(
            f"{self!r} has no attribute or relationship {name!r} (it has: {', '.join(known)})"
        )

    def __dir__(self) -> Iterable[str]:
        return sorted({*super().__dir__(), *self.__dict__.get("_relationships", {})})

    def _resolve(self, relationship: Any) -> Any:
        if not isinstance(relationship, Mapping):
            raise InvalidDocument(f"a relationship of {self!r} is not an object: {relationship!r}")
        linkage = relationship.get("data")
        value: Any
        if isinstance(linkage, list):
            value = ResourceList(linkage, self._index)
        elif linkage is None:
            return None
        else:
            value = Resource(linkage, self._index)
        links = relationship.get("links")
        if isinstance(links, Mapping):
            value.__dict__["links"] = Links(links)
        return value

    def __repr__(self) -> str:
        return f"<Resource {self.type}:{self.id}>"


class ResourceList(list[Resource]):
    """A list of :class:`Resource`; ``data`` is the raw list, ``links`` and ``meta`` those of
    the document (pagination) or of the to-many relationship."""

    def __init__(self, objects: Iterable[Any], index: _Index | None = None) -> None:
        raw = list(objects)
        super().__init__(Resource(obj, index) for obj in raw)
        self.data = raw
        self.links: Links | None = None
        self.meta: dict[str, Any] | None = None


def _identity(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    if obj.get("id") is None:
        return None
    return (str(obj["type"]), str(obj["id"]))


def _index(document: Mapping[str, Any]) -> _Index:
    index: _Index = {}
    data = document.get("data")
    included = document.get("included") or []
    if not isinstance(included, list):
        raise InvalidDocument("'included' must be a list of resource objects")
    primary = data if isinstance(data, list) else [data] if isinstance(data, Mapping) else []
    for obj in [*primary, *included]:
        if isinstance(obj, Mapping) and isinstance(obj.get("type"), str):
            ident = _identity(obj)
            if ident is not None:
                index.setdefault(ident, dict(obj))
    return index


def wrap(document: Any) -> Resource | ResourceList | None:
    """Wrap a JSON:API document: a dict, its JSON text, or a :class:`~zc_events.Response`.

    Returns a :class:`Resource` for a single primary resource, a :class:`ResourceList` for a
    collection (with the document's ``links`` and ``meta``), or None when ``data`` is null.
    Raises :class:`~zc_events.RemoteError` for a failed Response or a document with ``errors``
    and no ``data``, and :class:`InvalidDocument` when it is not a JSON:API document.
    """
    if isinstance(document, Response):
        document = document.raise_for_errors().data
    if isinstance(document, bytes | str):
        try:
            document = _json.loads(document)
        except (ValueError, TypeError) as exc:
            raise InvalidDocument(f"not valid JSON: {exc}") from exc
    if not isinstance(document, Mapping):
        raise InvalidDocument(f"a JSON:API document is an object, got {type(document).__name__}")
    if "data" not in document:
        errors = document.get("errors")
        if isinstance(errors, list) and errors:
            raise RemoteError(Response(None, True, [e for e in errors if isinstance(e, dict)]))
        raise InvalidDocument(
            f"not a JSON:API document: no 'data' member (members: {', '.join(document) or 'none'})"
        )
    data = document["data"]
    index = _index(document)
    if data is None:
        return None
    if isinstance(data, list):
        result = ResourceList(data, index)
        if isinstance(document.get("links"), Mapping):
            result.links = Links(document["links"])
        result.meta = document.get("meta")
        return result
    return Resource(data, index)


#: The old library's name.
wrap_response = wrap
