"""The `celery` backend for zc-events: publish through a Celery app, serve through a Celery task."""
