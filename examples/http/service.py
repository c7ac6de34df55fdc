"""An orders service served over HTTP: plain zc-events handlers, nothing HTTP-specific."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import zc_events

log = logging.getLogger("orders")

ORDERS: dict[int, dict[str, Any]] = {1: {"id": 1, "item": "coffee", "quantity": 2}}
_ids = itertools.count(2)


@zc_events.handler("orders.get")
def get_order(request: zc_events.Request) -> Any:
    pk = int(request.headers["pk"])
    if pk not in ORDERS:
        return zc_events.Response.error("NotFound", f"no order {pk}", 404)
    return ORDERS[pk]


@zc_events.handler("orders.create")
def create_order(request: zc_events.Request) -> zc_events.Response:
    order = {"id": next(_ids), "item": request.data["item"], "quantity": request.data["quantity"]}
    ORDERS[order["id"]] = order
    return zc_events.Response(order, status=201)


@zc_events.handler("orders.audit")
def audit(request: zc_events.Request) -> None:
    log.info("audit: %s", request.data)
