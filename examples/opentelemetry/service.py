"""The inventory service, traced: serve it with

    SERVICE_NAME=inventory ZC_EVENTS_BACKEND=rabbitmq ZC_EVENTS_MIDDLEWARE='["opentelemetry"]' \
        python -m zc_events worker telemetry service

(``ZC_EVENTS_BACKEND``, not ``--backend``: the handler's own call uses the default client, which
reads the setting.)
"""

import zc_events


@zc_events.handler("inventory.reserve")
def reserve(request):
    # A nested call: its span is a child of this handler's span, in the same trace.
    price = zc_events.get("inventory.price", data=request.data).data
    return {"reserved": request.data["sku"], "price": price}


@zc_events.handler("inventory.price")
def price(request):
    return 42
