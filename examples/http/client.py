"""Calls the orders service over HTTP. The code is the same on every transport: only the
settings (ZC_EVENTS_BACKEND=http and ZC_EVENTS_HTTP_ROUTES) say where the service is."""

from __future__ import annotations

import zc_events


def main() -> None:
    r = zc_events.get("orders.get", headers={"pk": 1})
    print("get orders.get pk=1 ->", r.data)
    r = zc_events.post("orders.create", data={"item": "tea", "quantity": 1})
    print("post orders.create ->", r.status, r.data)
    r = zc_events.get("orders.get", headers={"pk": 99})
    print("get orders.get pk=99 ->", r.has_errors, r.errors[0]["type"], r.status)
    r = zc_events.get("orders.create", data={"item": "tea"})
    print("get orders.create, quantity missing ->", r.has_errors, r.errors[0]["type"])
    message_id = zc_events.post_no_wait("orders.audit", data={"by": "client"})
    print("post_no_wait orders.audit -> accepted:", len(message_id) == 36)
    for key in ("orders.cancel", "billing.charge"):
        try:
            zc_events.get(key)
        except zc_events.NoRouteError as exc:
            print(f"get {key} -> NoRouteError: {exc}")


if __name__ == "__main__":
    main()
