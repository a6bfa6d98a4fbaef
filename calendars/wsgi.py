"""WSGI entry point: ``gunicorn calendars.wsgi:application``."""

import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calendars.settings")

try:
    application = get_wsgi_application()
except ImproperlyConfigured as exc:
    # A refused configuration names what to set; exit status 4 is gunicorn's "App failed to
    # load", which stops the server instead of restarting workers that fail the same way.
    print(exc, file=sys.stderr, flush=True)
    raise SystemExit(4) from None
