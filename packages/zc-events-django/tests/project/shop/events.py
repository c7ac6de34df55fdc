"""Autodiscovered by zc_events_django: registers this app's handlers."""

import zc_events
from zc_events_django import view_handler

from . import views

# A ViewSet class registered directly: the Django app's adapter makes it a handler.
zc_events.handler("orders")(views.OrderViewSet)
zc_events.handlers.register(
    "jsonapi-orders",
    view_handler(views.JsonApiOrderViewSet, relationship_view=views.OrderRelationshipView),
)
zc_events.handlers.register("crash", views.crash)
zc_events.handler("list-only")(views.ListOnlyViewSet)
zc_events.handlers.register("plain-customer", view_handler(views.plain_customer))

# The old fleet's DRF stack (djangorestframework-jsonapi for application/json).
zc_events.handler("add_drf")(views.AddView)
zc_events.handler("fleet-customers")(views.FleetCustomerViewSet)
zc_events.handler("catalogue")(views.CatalogueView)
