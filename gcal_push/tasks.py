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
