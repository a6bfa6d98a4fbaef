"""Celery's configuration source: Django's settings, loaded on first use by the worker or beat.

Settings refuse a production configuration that lacks a secret (``ImproperlyConfigured``,
naming the variables); the worker and beat then stop with that message and no traceback.
"""

import sys

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

try:
    settings.INSTALLED_APPS  # noqa: B018 (loads the settings module)
except ImproperlyConfigured as exc:
    sys.exit(str(exc))

__all__ = ["settings"]
