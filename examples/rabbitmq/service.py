"""The calculator service: plain functions that take a Request.

Serve it, from this folder:

    SERVICE_NAME=calculator python -m zc_events worker --backend rabbitmq service
"""

import zc_events


@zc_events.handler("calculator.add")
def add(request):
    return {"answer": request.data["x"] + request.data["y"]}


@zc_events.handler("calculator.log")
def log(request):
    print(f"log: {request.data}", flush=True)
