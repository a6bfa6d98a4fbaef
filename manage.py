#!/usr/bin/env python
"""Django's command-line utility for Convoke.

Next to ``make run`` (``var/dev.env`` exists, no ``.env``, ``DEBUG`` not set), it runs with
the same development environment as the processes ``make run`` starts, so that
``python manage.py createsuperuser`` and friends work without sourcing anything. A refused
configuration ends with its message (which names the variables to set), not a traceback.
"""

import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


def _use_make_run_environment() -> None:
    if "DEBUG" in os.environ or (BASE_DIR / ".env").exists():
        return
    if not (BASE_DIR / "var" / "dev.env").is_file():
        return
    from calendars.devserver import development_defaults

    for name, value in development_defaults().items():
        os.environ.setdefault(name, value)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calendars.settings")
    _use_make_run_environment()
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    main()
