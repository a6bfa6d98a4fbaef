"""Celery tasks of Google push: primary keys in, one service call, named transient retries.

(docs/style.md rule 8.) Retried errors are the adapter's transient ones (rate limits, 5xx after
its own retries, timeouts), under the ``google_task`` retry policy (:mod:`calendars.retry`);
anything else is recorded by the service and surfaces in the worker's log and the admin.
The services enqueue these tasks, so the tasks import the services in their bodies.
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task

from calendars.providers import TransientProviderError
from calendars.retry import retry_policy


def retry_countdown(retries: int, exc: TransientProviderError | None = None) -> float:
    """Seconds before retry number ``retries + 1``, under the ``google_task`` policy."""
    hint = exc.retry_after_seconds if exc is not None else None
    return retry_policy("google_task").delay(failures=retries + 1, hint=hint)


def _max_retries() -> int:
    return retry_policy("google_task").max_attempts - 1


@shared_task(bind=True, max_retries=None, ignore_result=True)
def calendar_sync_task(self, calendar_id: int) -> str:  # type: ignore[no-untyped-def]
    """Sync one calendar (coalesced: enqueued once per burst of notifications)."""
    from gcal_push.sync import calendar_sync

    try:
        return str(calendar_sync(calendar_id=calendar_id).outcome)
    except TransientProviderError as exc:
        if self.request.retries >= _max_retries():
            raise
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries, exc)) from exc


@shared_task(bind=True, max_retries=None, ignore_result=True)
def calendars_watch_task(self, calendar_ids: list[int]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Re-derive the watch channels of some calendars (a schedule or a calendar list
    changed). Retried when another run held a calendar or Google failed for now; what is
    left over is the hourly maintenance's."""
    from gcal_push.services import calendars_watch_reconcile

    summary = calendars_watch_reconcile(calendar_ids=calendar_ids)
    if (summary.busy or summary.transient_failures) and self.request.retries < _max_retries():
        raise self.retry(countdown=retry_countdown(self.request.retries))
    return summary.as_dict()


@shared_task(ignore_result=True)
def channels_renew_task(within_hours: float = 24.0) -> dict[str, int]:
    """Beat, hourly: renewal with a window of many periods, then cleanup and backfill."""
    from gcal_push.services import channels_maintain

    return channels_maintain(within=dt.timedelta(hours=within_hours)).as_dict()


@shared_task(ignore_result=True)
def calendars_reconcile_task() -> int:
    """Beat, every GOOGLE_SYNC_RECONCILE_MINUTES: sync every watched calendar anyway."""
    from gcal_push.services import calendars_reconcile

    return calendars_reconcile()
