"""gunicorn's settings file, which gunicorn reads from its working folder by default.

It wires the metrics (calendars/metrics.py): the master loads the Django settings before it
forks its workers, so that every worker counts into the same ``PROMETHEUS_MULTIPROC_DIR``,
and tells prometheus_client when a worker has exited. A worker that has loaded the
application settles its garbage collector (calendars/collector.py).
Everything else (bind, workers, timeout) stays on the command line.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any


def _settings() -> Any:
    return importlib.import_module(os.environ.get("DJANGO_SETTINGS_MODULE", "calendars.settings"))


def on_starting(server: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    try:
        _settings()  # sets PROMETHEUS_MULTIPROC_DIR in the environment the workers inherit
    except ImproperlyConfigured as exc:
        # A refused configuration names what to set (as in calendars/wsgi.py): no traceback.
        print(exc, file=sys.stderr, flush=True)
        raise SystemExit(4) from None


def post_worker_init(worker: Any) -> None:
    from calendars.collector import collector_settle

    collector_settle()


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client.multiprocess import mark_process_dead

    mark_process_dead(worker.pid, _settings().PROMETHEUS_MULTIPROC_DIR)
