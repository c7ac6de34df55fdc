#!/usr/bin/env python
"""The bookshop example's manage.py: `python examples/django/manage.py zc_events_worker`."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bookshop.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
