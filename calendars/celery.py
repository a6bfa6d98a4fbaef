"""The Celery application. Settings come from Django settings prefixed ``CELERY_``."""

import os

from celery import Celery
from celery.signals import worker_process_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calendars.settings")

app = Celery("convoke")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_shutdown.connect
def _metrics_process_dead(**_: object) -> None:
    """A Celery pool process is exiting: tell the metrics (calendars/metrics.py)."""
    from calendars.metrics import metrics_process_dead

    metrics_process_dead(pid=os.getpid())
