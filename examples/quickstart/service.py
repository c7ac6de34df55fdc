"""A service: plain functions that take a Request."""

import zc_events


@zc_events.handler("add")
def add(request):
    return {"answer": request.data["x"] + request.data["y"]}
