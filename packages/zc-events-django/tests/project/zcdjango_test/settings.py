"""Settings of the test project.

The tests' conftest loads these into ``settings.configure()`` without the ``ZC_EVENTS_*`` names
(the pytest process is shared with the other packages' tests); a worker subprocess started with
``DJANGO_SETTINGS_MODULE=zcdjango_test.settings`` sees all of them.
"""

import os

SECRET_KEY = "zc-events-django-tests"
DEBUG = False
ALLOWED_HOSTS = ["shop.internal"]
USE_TZ = True
ROOT_URLCONF = "zcdjango_test.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_json_api",
    "zc_events_django",
    "shop",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # shared between threads: the memory backend runs views on its worker threads
        "NAME": os.environ.get("ZCDJANGO_TEST_DB", "file:zcdjango?mode=memory&cache=shared"),
    }
}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "EXCEPTION_HANDLER": "rest_framework_json_api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"limited": "2/minute"},
}
JSON_API_FORMAT_FIELD_NAMES = "camelize"
JSON_API_FORMAT_TYPES = "dasherize"
JSON_API_PLURALIZE_TYPES = True

# Handlers by dotted path, read from Django settings (the rest register in shop/events.py).
ZC_EVENTS_HANDLERS = {
    "search": "shop.views.SearchView",
    "secure": "shop.views.SecureView",
}
