"""WSGI entry point: ``gunicorn calendars.wsgi:application``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calendars.settings")

application = get_wsgi_application()
