"""The Django app: registers the view adapter and autodiscovers ``events.py`` handler modules."""

from __future__ import annotations

from django.apps import AppConfig


class ZcEventsConfig(AppConfig):
    """``'zc_events_django'`` in ``INSTALLED_APPS``.

    On ``ready()``: DRF views and viewsets become valid zc-events handlers (in
    ``ZC_EVENTS_HANDLERS``, ``JOB_MAPPING`` and ``@zc_events.handler``), and each installed app's
    ``events`` module is imported so its ``@zc_events.handler`` registrations run (turn this off
    with ``ZC_EVENTS_AUTODISCOVER = False``).
    """

    name = "zc_events_django"
    label = "zc_events_django"
    verbose_name = "zc-events"

    def ready(self) -> None:
        from django.conf import settings
        from django.utils.module_loading import autodiscover_modules

        import zc_events

        from ._dispatch import adapt

        zc_events.HandlerRegistry.add_adapter(adapt)
        if getattr(settings, "ZC_EVENTS_AUTODISCOVER", True):
            autodiscover_modules("events")
