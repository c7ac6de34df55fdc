#!/usr/bin/env python
"""The test project's manage.py (the RabbitMQ test runs its zc_events_worker command)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zcdjango_test.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
