"""The ``celery`` backend for zc-events: publish through a Celery app, serve through a Celery task.

# proj/celery.py
from celery import Celery
import zc_events_celery

app = Celery("proj", broker="amqp://guest:guest@localhost:5672//")
zc_events_celery.install(app, service_name="orders", modules=["proj.handlers"])

# anywhere: ZC_EVENTS_BACKEND=celery, ZC_EVENTS_BACKEND_OPTIONS='{"app": "proj.celery:app"}'
zc_events.get("add", data={"x": 1, "y": 1}).data
"""

from ._backend import SERIALIZER, CeleryBackend, load_app
from ._install import DEFAULTS, Installation, events_queue, install, installation

__version__ = "1.0.0"

__all__ = [
    "DEFAULTS",
    "SERIALIZER",
    "CeleryBackend",
    "Installation",
    "events_queue",
    "install",
    "installation",
    "load_app",
]
