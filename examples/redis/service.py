"""The calculator service: plain functions that take a Request.

Serve it over Redis, from this folder:

    SERVICE_NAME=calculator ZC_EVENTS_BACKEND=redis python -m zc_events worker service
"""

import zc_events


@zc_events.handler("calculator.add")
def add(request):
    return {"answer": request.data["x"] + request.data["y"]}


@zc_events.handler("calculator.log")
def log(request):
    print(f"log: {request.data}", flush=True)
