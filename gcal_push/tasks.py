"""Celery tasks of Google push: primary keys in, one service call, named transient retries.

(STYLE.md rule 8.) Retried errors are the adapter's transient ones (rate limits, 5xx after
its own retries, timeouts), with exponential backoff, jitter and a cap; anything else is
recorded by the service and surfaces in the worker's log and the admin.
"""

from __future__ import annotations

import random

from celery import shared_task

from calendars.providers import TransientProviderError

SYNC_MAX_RETRIES = 6
RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 30 * 60.0
RETRY_JITTER = 0.25


def retry_countdown(retries: int, exc: TransientProviderError | None = None) -> float:
    """Seconds before retry number ``retries + 1``: doubling, capped, spread by jitter."""
    base = min(RETRY_BASE_SECONDS * 2**retries, RETRY_MAX_SECONDS)
    if exc is not None and exc.retry_after_seconds:
        base = max(base, min(exc.retry_after_seconds, RETRY_MAX_SECONDS))
    return base * random.uniform(1 - RETRY_JITTER, 1 + RETRY_JITTER)


@shared_task(bind=True, max_retries=SYNC_MAX_RETRIES, ignore_result=True)
def calendar_sync_task(self, calendar_id: int) -> str:  # type: ignore[no-untyped-def]
    """Sync one calendar (coalesced: enqueued once per burst of notifications)."""
    from gcal_push.sync import calendar_sync

    try:
        return str(calendar_sync(calendar_id=calendar_id).outcome)
    except TransientProviderError as exc:
        raise self.retry(exc=exc, countdown=retry_countdown(self.request.retries, exc)) from exc


CHANNEL_MAX_RETRIES = 6


def _retry_when_worth_it(task, summary) -> None:  # type: ignore[no-untyped-def]
    """Retry a one-calendar channel operation that another run was busy with, or that hit a
    transient Google error."""
    if summary.busy or summary.transient_failures:
        raise task.retry(countdown=retry_countdown(task.request.retries))


@shared_task(bind=True, max_retries=CHANNEL_MAX_RETRIES, ignore_result=True)
def channel_create_task(self, calendar_id: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from gcal_push.services import channel_create

    summary = channel_create(calendar_id=calendar_id)
    _retry_when_worth_it(self, summary)
    return summary.as_dict()


@shared_task(bind=True, max_retries=CHANNEL_MAX_RETRIES, ignore_result=True)
def channel_teardown_task(self, calendar_id: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    from gcal_push.services import channel_teardown

    summary = channel_teardown(calendar_id=calendar_id)
    _retry_when_worth_it(self, summary)
    return summary.as_dict()


@shared_task(ignore_result=True)
def channels_renew_task(within_hours: float = 24.0) -> dict[str, int]:
    """Beat, hourly: renewal with a window of many periods, then cleanup and backfill."""
    import datetime as dt

    from gcal_push.services import channels_maintain

    return channels_maintain(within=dt.timedelta(hours=within_hours)).as_dict()


@shared_task(ignore_result=True)
def calendars_reconcile_task() -> int:
    """Beat, every GOOGLE_SYNC_RECONCILE_MINUTES: sync every watched calendar anyway."""
    from gcal_push.services import calendars_reconcile

    return calendars_reconcile()
