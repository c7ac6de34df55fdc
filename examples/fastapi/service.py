"""The inventory service: async def handlers, awaited on the worker's event loop.

Serve it, from this folder:

    SERVICE_NAME=inventory python -m zc_events worker --backend rabbitmq service
"""

import asyncio

import zc_events

STOCK = {"tea": 10, "cake": 2}


@zc_events.handler("inventory.stock")
async def stock(request):
    await asyncio.sleep(0.05)  # stands for an async database query
    item = request.data["item"]
    if item not in STOCK:
        return zc_events.Response.error("NotFound", f"no item {item!r}", 404)
    return {"item": item, "quantity": STOCK[item]}


@zc_events.handler("inventory.reserve")
async def reserve(request):
    item, quantity = request.data["item"], request.data["quantity"]
    left = STOCK.get(item, 0)
    if left < quantity:
        return zc_events.Response.error("OutOfStock", f"only {left} {item} left", 409)
    STOCK[item] = left - quantity  # no await since the check: no other call can interleave
    return {"item": item, "reserved": quantity, "left": STOCK[item]}


@zc_events.handler("inventory.audit")
async def audit(request):
    print(f"audit: {request.data}", flush=True)
