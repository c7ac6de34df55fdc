"""An example service whose Celery app also serves zc-events calls."""
