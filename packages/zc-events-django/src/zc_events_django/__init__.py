"""Django integration for zc-events: settings, DRF views and viewsets as handlers, a worker command.

Add ``'zc_events_django'`` to ``INSTALLED_APPS``; then a DRF view class, ViewSet class or
``@api_view`` function can be a handler::

    ZC_EVENTS_HANDLERS = {'orders': 'shop.views.OrderViewSet'}

    # or, in shop/events.py (autodiscovered)
    zc_events.handler('orders')(OrderViewSet)

and ``python manage.py zc_events_worker`` serves them with the configured backend.
"""

from __future__ import annotations

from ._dispatch import ViewHandler, adapt, response_from_django, view_handler

__version__ = "1.0.0"

__all__ = ["ViewHandler", "adapt", "event_request", "response_from_django", "view_handler"]


def event_request(request: object) -> object:
    """The zc-events :class:`~zc_events.Request` behind a Django or DRF request, or None.

    For authentication classes that decide to trust something the caller sent (a signed header,
    say): nothing in the envelope authenticates anyone unless such a class says so.
    """
    inner = getattr(request, "_request", request)  # DRF wraps the HttpRequest
    return getattr(inner, "zc_events", None)
