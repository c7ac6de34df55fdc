from __future__ import annotations

import json
from typing import Any

import pytest

import zc_events
from zc_events import RemoteError, Response
from zc_events.jsonapi import InvalidDocument, Resource, ResourceList, underscore, wrap

ORDER: dict[str, Any] = {
    "data": {
        "type": "orders",
        "id": "1",
        "attributes": {"totalPrice": "9.50", "delivery-note": "back door", "status": "open"},
        "relationships": {
            "customer": {
                "data": {"type": "customers", "id": "7"},
                "links": {"related": "/orders/1/customer"},
            },
            "items": {"data": [{"type": "items", "id": "1"}, {"type": "items", "id": "2"}]},
            "courier": {"data": None},
            "invoice": {"data": {"type": "invoices", "id": "99"}},
        },
        "links": {"self": "/orders/1"},
    },
    "included": [
        {
            "type": "customers",
            "id": "7",
            "attributes": {"name": "Ada"},
            "relationships": {"orders": {"data": [{"type": "orders", "id": "1"}]}},
        },
        {"type": "items", "id": "1", "attributes": {"sku": "A"}},
        {"type": "items", "id": "2", "attributes": {"sku": "B"}},
    ],
}


def test_single_resource_with_included_relationships() -> None:
    order = wrap(ORDER)
    assert isinstance(order, Resource)
    assert (order.id, order.type) == ("1", "orders")
    assert order.total_price == "9.50"
    assert order.delivery_note == "back door"
    assert order.links is not None and order.links.self == "/orders/1"
    assert order.customer.name == "Ada"
    assert order.customer.links.related == "/orders/1/customer"
    assert [item.sku for item in order.items] == ["A", "B"]
    assert isinstance(order.items, ResourceList)
    assert order.courier is None
    # not included: only the linkage is known
    assert (order.invoice.type, order.invoice.id) == ("invoices", "99")
    assert order.data["attributes"]["totalPrice"] == "9.50"
    assert "customer" in dir(order)


def test_cycles_through_included_resolve_lazily() -> None:
    order = wrap(ORDER)
    assert isinstance(order, Resource)
    # customer → orders → order 1 is the primary resource, found through the index
    assert order.customer.orders[0].customer.orders[0].total_price == "9.50"


def test_collection_keeps_document_links_and_meta() -> None:
    doc = {
        "data": [{"type": "items", "id": 1, "attributes": {"sku": "A"}}],
        "links": {"next": "/items?page=2"},
        "meta": {"pagination": {"count": 3}},
    }
    items = wrap(doc)
    assert isinstance(items, ResourceList)
    assert items[0].id == "1" and items[0].sku == "A"
    assert items.links is not None and items.links.next == "/items?page=2"
    assert items.links.prev is None
    assert items.meta == {"pagination": {"count": 3}}


def test_accepts_json_text_and_response() -> None:
    assert wrap(json.dumps(ORDER)).total_price == "9.50"  # type: ignore[union-attr]
    assert wrap(Response(ORDER, status=200)).customer.name == "Ada"  # type: ignore[union-attr]
    assert wrap({"data": None}) is None


def test_failed_response_and_error_documents_raise_remote_error() -> None:
    failed = Response.error("NotFound", "No Order matches the given query.", 404)
    with pytest.raises(RemoteError, match="NotFound: No Order matches"):
        wrap(failed)
    doc = {"errors": [{"detail": "Not found.", "status": "404", "code": "not_found"}]}
    with pytest.raises(RemoteError, match="Not found."):
        wrap(doc)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"meta": {}}, "no 'data' member"),
        ([1, 2], "is an object"),
        ("{not json", "not valid JSON"),
        ({"data": {"id": "1"}}, "needs a string 'type'"),
        ({"data": {"type": "a", "attributes": []}}, "'attributes'"),
    ],
)
def test_invalid_documents(document: Any, message: str) -> None:
    with pytest.raises(InvalidDocument, match=message):
        wrap(document)
    assert issubclass(InvalidDocument, ValueError)
    assert issubclass(InvalidDocument, zc_events.ZcEventsError)


def test_unknown_attribute_names_what_exists() -> None:
    order = wrap(ORDER)
    with pytest.raises(AttributeError, match=r"no attribute or relationship 'price'.*total_price"):
        order.price  # type: ignore[union-attr]  # noqa: B018


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("firstName", "first_name"),
        ("first-name", "first_name"),
        ("HTTPServer", "http_server"),
        ("id", "id"),
        ("Order2Item", "order2_item"),
    ],
)
def test_underscore(word: str, expected: str) -> None:
    assert underscore(word) == expected
