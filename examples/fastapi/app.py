"""A FastAPI app that calls the inventory service through zc_events.AsyncEventClient.

Run it, from this folder (the backend and its options come from the ZC_EVENTS_* settings):

    ZC_EVENTS_BACKEND=rabbitmq python -m uvicorn app:app
"""

import asyncio
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel

import zc_events


@asynccontextmanager
async def lifespan(app: FastAPI):
    # One client for the whole app: its calls share one connection, from every request at once.
    async with zc_events.AsyncEventClient(timeout=10) as client:
        app.state.events = client
        yield


app = FastAPI(lifespan=lifespan)


def get_events(request: Request) -> zc_events.AsyncEventClient:
    return request.app.state.events


Events = Annotated[zc_events.AsyncEventClient, Depends(get_events)]


def fail(response: zc_events.Response) -> HTTPException:
    """The service's error, as an HTTP error of this API."""
    return HTTPException(response.status or 502, detail=response.errors[0]["message"])


@app.get("/stock/{item}")
async def stock(item: str, events: Events):
    response = await events.get("inventory.stock", data={"item": item})
    if response.has_errors:
        raise fail(response)
    return response.data


@app.get("/stock")
async def stock_of_many(items: str, events: Events):
    # Every call is in flight at once over the one connection.
    names = items.split(",")
    responses = await asyncio.gather(
        *(events.get("inventory.stock", data={"item": name}) for name in names)
    )
    for response in responses:
        if response.has_errors:
            raise fail(response)
    return {r.data["item"]: r.data["quantity"] for r in responses}


class Order(BaseModel):
    item: str
    quantity: int


@app.post("/orders", status_code=201)
async def order(order: Order, events: Events):
    response = await events.post("inventory.reserve", data=order.model_dump())
    if response.has_errors:
        raise fail(response)
    await events.post_no_wait("inventory.audit", data={"reserved": response.data})
    return response.data
