"""DRF views, viewsets and function views served over the memory backend."""

from __future__ import annotations

from typing import Any

import pytest

import zc_events
from zc_events.jsonapi import Resource, ResourceList, wrap


def make_order(**fields: Any) -> Any:
    from shop.models import Order

    return Order.objects.create(**{"item": "tea", "quantity": 1, **fields})


# -- a ViewSet with every action ------------------------------------------------------------
def test_viewset_create_list_retrieve(client: zc_events.EventClient) -> None:
    created = client.post("orders", data={"item": "tea", "quantity": 2})
    assert created.has_errors is False and created.status == 201
    pk = created.data["id"]
    assert created.data == {
        "id": pk,
        "customer": None,
        "item": "tea",
        "quantity": 2,
        "status": "open",
        "delivery_note": "",
    }
    make_order(item="cake", status="shipped")

    listed = client.get("orders")
    assert listed.status == 200
    assert [o["item"] for o in listed.data] == ["tea", "cake"]
    filtered = client.get("orders", headers={"query_string": "status=shipped"})
    assert [o["item"] for o in filtered.data] == ["cake"]
    retrieved = client.get("orders", headers={"pk": pk})
    assert (retrieved.status, retrieved.data["item"]) == (200, "tea")


def test_viewset_update_partial_update_destroy(client: zc_events.EventClient) -> None:
    pk = make_order().pk
    put = client.put("orders", data={"item": "coffee", "quantity": 3}, headers={"pk": pk})
    assert (put.status, put.data["item"], put.data["quantity"]) == (200, "coffee", 3)
    patch = client.patch("orders", data={"status": "paid"}, headers={"pk": str(pk)})
    assert (patch.data["item"], patch.data["status"]) == ("coffee", "paid")
    deleted = client.delete("orders", headers={"pk": pk})
    assert (deleted.has_errors, deleted.status, deleted.data) == (False, 204, None)

    gone = client.get("orders", headers={"pk": pk})
    assert (gone.has_errors, gone.data, gone.status) == (True, None, 404)
    assert gone.errors == [{"detail": "No Order matches the given query."}]  # as DRF renders it


def test_viewset_method_not_allowed(client: zc_events.EventClient) -> None:
    """DRF decides: its own 405 from http_method_not_allowed, through its exception handler."""
    pk = make_order().pk
    r = client.post("orders", data={"item": "x"}, headers={"pk": pk})
    assert (r.status, r.errors) == (405, [{"detail": 'Method "POST" not allowed.'}])
    r = client.delete("orders")
    assert (r.status, r.errors) == (405, [{"detail": 'Method "DELETE" not allowed.'}])
    with pytest.raises(zc_events.RemoteError, match='HTTP 405: Method "DELETE" not allowed.'):
        r.raise_for_errors()


def test_viewset_route_a_router_would_not_make(client: zc_events.EventClient) -> None:
    """A ViewSet with no detail action has no detail route: 404, as from Django's resolver."""
    assert client.get("list-only").data == ["listed"]
    r = client.get("list-only", headers={"pk": 1})
    assert (r.status, r.errors[0]["type"]) == (404, "NotFound")
    assert "no detail (with a pk) route" in r.errors[0]["message"]


def test_viewset_extra_actions_through_related_resource(client: zc_events.EventClient) -> None:
    pk = make_order().pk
    make_order(status="shipped")
    cancelled = client.post("orders", headers={"pk": pk, "related_resource": "cancel"})
    assert (cancelled.status, cancelled.data["status"]) == (200, "cancelled")
    counts = client.get("orders", headers={"related_resource": "count-by-status"})
    assert counts.data == {"cancelled": 1, "shipped": 1}
    # the action's own method list applies, and unknown names are not found
    assert client.get("orders", headers={"pk": pk, "related_resource": "cancel"}).status == 405
    unknown = client.get("orders", headers={"pk": pk, "related_resource": "destroy"})
    assert (unknown.status, unknown.errors[0]["type"]) == (404, "NotFound")


def test_viewset_validation_error(client: zc_events.EventClient) -> None:
    r = client.post("orders", data={"quantity": 1000})
    assert (r.has_errors, r.data, r.status) == (True, None, 400)
    assert r.errors == [  # DRF's body, unchanged
        {"item": ["This field is required."], "quantity": ["at most 100 per order"]}
    ]
    with pytest.raises(zc_events.RemoteError, match='HTTP 400: {"item": \\["This field'):
        r.raise_for_errors()


# -- an APIView reading query parameters ----------------------------------------------------
def test_apiview_reads_query_params(client: zc_events.EventClient) -> None:
    r = client.get("search", headers={"query_string": "?q=green+tea&tag=a&tag=b"})
    assert r.status == 200
    assert r.data == {
        "q": "green tea",
        "tags": ["a", "b"],
        "path": "/search/",
        "host": "shop.internal",
        "kwargs": {},
        "user": None,
        "claims": None,
    }
    as_dict = client.get("search", headers={"query_string": {"q": "x", "tag": ["c", "d"]}, "pk": 5})
    assert (as_dict.data["q"], as_dict.data["tags"]) == ("x", ["c", "d"])
    assert as_dict.data["kwargs"] == {"pk": "5"}
    assert as_dict.data["path"] == "/search/5/"


# -- authentication, permissions, validation, throttling ------------------------------------
def test_authorization_header_goes_to_the_services_authentication(
    client: zc_events.EventClient, alice: str
) -> None:
    r = client.get("secure", headers={"authorization": alice})
    assert (r.status, r.data) == (200, {"user": "alice"})
    assert client.get("search", headers={"authorization": alice}).data["user"] == "alice"

    bad = client.get("secure", headers={"authorization": "Token nope"})
    assert (bad.status, bad.errors) == (401, [{"detail": "Invalid token."}])


def test_caller_claims_are_not_trusted(client: zc_events.EventClient) -> None:
    from django.contrib.auth.models import User

    User.objects.create_user("root", is_staff=True, is_superuser=True)
    claims = {"user_id": 1, "roles": ["admin", "service"], "user": "root"}
    r = client.get("secure", headers=claims)
    assert (r.status, r.errors) == (
        401,
        [{"detail": "Authentication credentials were not provided."}],
    )
    seen = client.get("search", headers=claims).data
    assert (seen["user"], seen["claims"]) == (None, ["admin", "service"])  # visible, not trusted


def test_validation_and_permission_errors(client: zc_events.EventClient, alice: str) -> None:
    auth = {"authorization": alice}
    invalid = client.post("secure", data={"email": "nope", "name": "x" * 30}, headers=auth)
    assert (invalid.status, invalid.errors) == (
        400,
        [
            {
                "email": ["Enter a valid email address."],
                "name": ["Ensure this field has no more than 20 characters."],
            }
        ],
    )
    ok = client.post("secure", data={"email": "a@example.com", "name": "Ada"}, headers=auth)
    assert (ok.status, ok.data) == (201, {"email": "a@example.com", "name": "Ada"})

    denied = client.delete("secure", headers=auth)
    assert (denied.status, denied.data) == (403, None)
    assert denied.errors == [{"detail": "Only staff may delete contacts."}]


def test_throttling(client: zc_events.EventClient, alice: str) -> None:
    auth = {"authorization": alice}
    assert [client.get("secure", headers=auth).status for _ in range(2)] == [200, 200]
    throttled = client.get("secure", headers=auth)
    assert throttled.status == 429
    assert list(throttled.errors[0]) == ["detail"]
    assert throttled.errors[0]["detail"].startswith("Request was throttled.")


def test_unsupported_media_type(client: zc_events.EventClient) -> None:
    r = client.post("echo", data="not an object", headers={"content_type": "application/xml"})
    assert (r.status, r.errors) == (
        415,
        [{"detail": 'Unsupported media type "application/xml" in request.'}],
    )


# -- function views, crashes, plain Django views --------------------------------------------
def test_function_view_registered_with_the_decorator(client: zc_events.EventClient) -> None:
    r = client.post("echo", data={"x": [1, "é"]}, headers={"pk": 3})
    assert r.data == {"method": "POST", "data": {"x": [1, "é"]}, "pk": "3"}
    assert client.get("echo").data == {"method": "GET", "data": {}, "pk": None}
    teapot = client.post("echo", data={"fail": "teapot"})
    assert (teapot.status, teapot.errors) == (500, [{"detail": "I'm a teapot"}])  # DRF rendered it


def test_unhandled_exception_is_a_500_with_the_exception(
    client: zc_events.EventClient, caplog: pytest.LogCaptureFixture
) -> None:
    r = client.get("crash")
    assert (r.has_errors, r.status) == (True, 500)
    assert r.errors[0]["type"] == "ZeroDivisionError"
    assert "trace" not in r.errors[0]  # DEBUG is False: no traceback for the caller
    assert "Internal Server Error: GET 'crash'" in caplog.text
    assert "1 / 0" in caplog.text  # but the server's log has it


def test_debug_sends_the_traceback_unless_the_setting_says_otherwise(
    client: zc_events.EventClient,
) -> None:
    from django.test import override_settings

    with override_settings(DEBUG=True):
        assert "1 / 0" in client.get("crash").errors[0]["trace"]
    with override_settings(DEBUG=True, ZC_EVENTS_SEND_TRACEBACKS=False):
        assert "trace" not in client.get("crash").errors[0]


def test_plain_django_function_view(client: zc_events.EventClient) -> None:
    from shop.models import Customer

    pk = Customer.objects.create(name="Ada").pk
    assert client.get("plain-customer", headers={"pk": pk}).data == {"name": "Ada"}
    missing = client.get("plain-customer", headers={"pk": 999})
    assert (missing.status, missing.errors[0]["type"]) == (404, "NotFound")


def test_no_wait_calls_reach_the_view(client: zc_events.EventClient) -> None:
    from shop.models import Order

    client.post_no_wait("orders", data={"item": "later"})
    client.backend.join(timeout=10)  # type: ignore[attr-defined]
    assert list(Order.objects.values_list("item", flat=True)) == ["later"]


# -- a JSON:API ViewSet --------------------------------------------------------------------
def jsonapi_order(item: str, customer: int | None = None, **attributes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"data": {"type": "orders", "attributes": {"item": item, **attributes}}}
    if customer is not None:
        doc["data"]["relationships"] = {
            "customer": {"data": {"type": "customers", "id": str(customer)}}
        }
    return doc


def test_jsonapi_viewset(client: zc_events.EventClient) -> None:
    from shop.models import Customer

    ada = Customer.objects.create(name="Ada").pk
    created = client.post(
        "jsonapi-orders", data=jsonapi_order("tea", ada, deliveryNote="back door")
    )
    assert created.status == 201, created.errors
    pk = created.data["data"]["id"]
    assert created.data["data"]["attributes"]["deliveryNote"] == "back door"

    r = client.get("jsonapi-orders", headers={"pk": pk, "query_string": "include=customer"})
    order = wrap(r)
    assert isinstance(order, Resource)
    assert (order.type, order.id, order.item, order.delivery_note) == (
        "orders",
        pk,
        "tea",
        "back door",
    )
    assert order.customer.name == "Ada"

    client.post("jsonapi-orders", data=jsonapi_order("cake"))
    page = wrap(client.get("jsonapi-orders", headers={"query_string": "page[size]=1"}))
    assert isinstance(page, ResourceList)
    assert [o.item for o in page] == ["tea"]
    assert page.meta == {"pagination": {"page": 1, "pages": 2, "count": 2}}
    assert page.links is not None and "page%5Bnumber%5D=2" in page.links.next
    assert page.links.next.startswith("http://shop.internal/jsonapi-orders/")


def test_jsonapi_relationships_and_related_resources(client: zc_events.EventClient) -> None:
    from shop.models import Customer

    ada = Customer.objects.create(name="Ada").pk
    pk = make_order(customer_id=ada).pk
    relationship = client.get("jsonapi-orders", headers={"pk": pk, "relationship": "customer"})
    assert relationship.status == 200, relationship.errors
    assert relationship.data["data"] == {"type": "customers", "id": str(ada)}

    related = wrap(client.get("jsonapi-orders", headers={"pk": pk, "related_resource": "customer"}))
    assert isinstance(related, Resource)
    assert (related.type, related.id, related.name) == ("customers", str(ada), "Ada")

    no_view = client.get("orders", headers={"pk": pk, "relationship": "customer"})
    assert (no_view.status, no_view.errors[0]["type"]) == (404, "NotFound")


def test_jsonapi_errors_keep_their_error_objects(client: zc_events.EventClient) -> None:
    invalid = client.post("jsonapi-orders", data=jsonapi_order("tea", quantity=1000))
    assert invalid.status == 400
    assert invalid.errors == [
        {
            "detail": "at most 100 per order",
            "status": "400",
            "source": {"pointer": "/data/attributes/quantity"},
            "code": "invalid",
        }
    ]
    missing = client.get("jsonapi-orders", headers={"pk": 999})
    assert missing.errors == [
        {"detail": "No Order matches the given query.", "status": "404", "code": "not_found"}
    ]
    with pytest.raises(zc_events.RemoteError, match="not_found: No Order matches"):
        wrap(missing)
