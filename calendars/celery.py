"""The Celery application. Settings come from Django settings prefixed ``CELERY_``."""

import os
from pathlib import Path

from celery import Celery
from celery.beat import PersistentScheduler as CeleryPersistentScheduler
from celery.signals import task_postrun, task_prerun, worker_process_init, worker_process_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calendars.settings")

app = Celery("convoke")
# Django's settings, loaded by calendars.celery_config so that a refused configuration ends
# the worker or beat with its message instead of a traceback.
app.config_from_object("calendars.celery_config:settings", namespace="CELERY")
app.autodiscover_tasks()


class PersistentScheduler(CeleryPersistentScheduler):
    """Celery's file-backed beat scheduler, which first creates its schedule file's folder:
    without it, beat on a fresh clone with PostgreSQL and Redis (no ``var/``) dies at start
    while the worker runs on, and no periodic task (retries, sweeps, renewals) ever runs."""

    def setup_schedule(self) -> None:
        Path(self.schedule_filename).parent.mkdir(parents=True, exist_ok=True)
        super().setup_schedule()


@worker_process_init.connect
def _collector_settled(**_: object) -> None:
    """A pool process has started with the application loaded: settle its garbage collector
    (calendars/collector.py)."""
    from calendars.collector import collector_settle

    collector_settle()


@task_postrun.connect
def _collector_tidied(task: object = None, **_: object) -> None:
    """A task has ended in a pool process: a full collection if the last is half a minute old
    (calendars/collector.py)."""
    request = getattr(task, "request", None)
    if not getattr(request, "is_eager", False):
        from calendars.collector import collector_tidy

        collector_tidy()


@worker_process_shutdown.connect
def _metrics_process_dead(**_: object) -> None:
    """A Celery pool process is exiting: tell the metrics (calendars/metrics.py)."""
    from calendars.metrics import metrics_process_dead

    metrics_process_dead(pid=os.getpid())


@task_prerun.connect
def _database_connections_checked(task: object = None, **_: object) -> None:
    """Workers keep their database connections between tasks (``CELERY_DB_REUSE_MAX``):
    before each task, Django closes only a connection that is broken or older than
    ``CONN_MAX_AGE``, as it does between web requests."""
    request = getattr(task, "request", None)
    if not getattr(request, "is_eager", False):
        from django.db import close_old_connections

        close_old_connections()
