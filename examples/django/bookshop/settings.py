"""A small Django + DRF service that serves its BookViewSet over the broker."""

import json
import os
import tempfile

SECRET_KEY = "example-only"
DEBUG = False
ALLOWED_HOSTS = ["bookshop.internal"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
ROOT_URLCONF = "bookshop.urls"
INSTALLED_APPS = ["rest_framework", "zc_events_django", "books"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(
            "BOOKSHOP_DB", os.path.join(tempfile.gettempdir(), "zc-events-bookshop.sqlite3")
        ),
    }
}
REST_FRAMEWORK = {"UNAUTHENTICATED_USER": None, "DEFAULT_AUTHENTICATION_CLASSES": []}

# zc-events: the service's queue, the transport, and what it serves. The environment may
# override the first three (the example's test runs it on unique queue and exchange names).
SERVICE_NAME = os.environ.get("SERVICE_NAME", "bookshop")
ZC_EVENTS_BACKEND = os.environ.get("ZC_EVENTS_BACKEND", "rabbitmq")
ZC_EVENTS_BACKEND_OPTIONS = json.loads(os.environ.get("ZC_EVENTS_BACKEND_OPTIONS", "{}"))
ZC_EVENTS_HANDLERS = {"books": "books.views.BookViewSet"}
