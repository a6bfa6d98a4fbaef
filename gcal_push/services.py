"""Google push notifications: the entry points the rest of Convoke calls (docs/design.md 1.4).

A watch channel exists exactly for each calendar of :func:`gcal_push.selectors.calendars_to_watch`
(connected Google calendars with a usable grant that some active schedule uses): the one
definition, from which every channel is derived.

* :func:`calendars_watch_enqueue`: some calendars may have started or stopped being watched
  (a schedule changed: the core's ``calendars_watch_changed`` hook; an account's calendar
  list was refreshed). After the commit, a task runs :func:`calendars_watch_reconcile`:
  their channels are created or stopped to match the selector. Never a Google call in the
  caller's transaction or its commit hook.
* :func:`channel_create`: a channel for one calendar, written ``pending`` before
  ``events.watch`` is called; its first sync takes the initial sync token with a full
  listing. Idempotent; a failure leaves no live channel behind.
* :func:`channel_teardown`: stops the channels of a calendar (``channels.stop``, with the
  adapter's retries; 404 means done).
* :func:`channels_maintain`: the hourly beat task's work: renewal, then cleanup and backfill.
* :func:`calendars_reconcile`: the periodic sync of every watched calendar, since Google
  drops some notifications (guides/push).
* :func:`channel_renew_now`, :func:`calendar_resync`: the operators' levers (admin actions).

The batch engine is :mod:`gcal_push.channels`, the webhook's work :mod:`gcal_push.notifications`,
the sync :mod:`gcal_push.sync`.
"""

from __future__ import annotations

import datetime as dt
import logging

from calendars.batching import keyset_batches
from calendars.enqueue import enqueue_on_commit
from gcal_push import selectors
from gcal_push.channels import (
    ChannelRunSummary,
    channels_backfill,
    channels_renew,
    channels_teardown,
)
from gcal_push.notifications import SyncRequest, calendar_sync_request, calendar_syncs_request
from gcal_push.tasks import calendars_watch_task

logger = logging.getLogger(__name__)

RENEWAL_WINDOW = dt.timedelta(hours=24)
RECONCILE_BATCH_SIZE = 500
# "Whatever its expiration": a cutoff beyond any channel Google grants (at most a month).
RENEW_NOW_WINDOW = dt.timedelta(days=3650)


def calendars_watch_enqueue(*, calendar_ids: list[int]) -> None:
    """After the caller's commit, re-derive the channels of these calendars
    (:func:`calendars_watch_reconcile`, in a task). A lost enqueue is made up by the hourly
    maintenance, which derives every channel from the same selector."""
    ids = sorted(set(calendar_ids))
    if ids:
        enqueue_on_commit(calendars_watch_task, ids)


def calendars_watch_reconcile(*, calendar_ids: list[int]) -> ChannelRunSummary:
    """Make the channels of these calendars match :func:`selectors.calendars_to_watch`:
    stop those of calendars no longer to watch, create the missing ones."""
    summary = channels_teardown(calendar_ids=calendar_ids, concurrency=1)
    summary.merge(channels_backfill(calendar_ids=calendar_ids, concurrency=1))
    logger.info(
        "google calendars watch reconciled calendars=%d %s", len(calendar_ids), summary.as_dict()
    )
    return summary


def channel_create(*, calendar_id: int) -> ChannelRunSummary:
    """A watch channel for one calendar, unless it has one or must not be watched."""
    summary = channels_backfill(calendar_ids=[calendar_id], concurrency=1)
    logger.info("google channel create calendar=%s %s", calendar_id, summary.as_dict())
    return summary


def channel_teardown(*, calendar_id: int) -> ChannelRunSummary:
    """Stop the live channels of one calendar (``channels.stop``; 404 means done)."""
    summary = channels_teardown(calendar_ids=[calendar_id], force=True, concurrency=1)
    logger.info("google channel teardown calendar=%s %s", calendar_id, summary.as_dict())
    return summary


def channel_renew_now(*, calendar_id: int) -> ChannelRunSummary:
    """Operators: replace the calendar's active channel now, whatever its expiration, the
    same make-before-break way as the hourly renewal."""
    summary = channels_renew(within=RENEW_NOW_WINDOW, calendar_ids=[calendar_id], concurrency=1)
    logger.info("google channel renewed now calendar=%s %s", calendar_id, summary.as_dict())
    return summary


def calendar_resync(*, calendar_id: int) -> SyncRequest:
    """Operators: sync the calendar with Google now (joins a sync already pending)."""
    request = calendar_sync_request(calendar_id=calendar_id, notified=False)
    logger.info("google calendar resync requested calendar=%s result=%s", calendar_id, request)
    return request


def channels_maintain(*, within: dt.timedelta = RENEWAL_WINDOW) -> ChannelRunSummary:
    """Renew what expires within ``within``, stop channels no schedule needs, and create the
    channels that are missing (a failed creation is retried here within the hour)."""
    summary = channels_renew(within=within)
    summary.merge(channels_teardown())
    summary.merge(channels_backfill())
    logger.info("google channels maintained %s", summary.as_dict())
    return summary


def calendars_reconcile(*, batch_size: int = RECONCILE_BATCH_SIZE) -> int:
    """Request a sync of every calendar with an active channel, and of every calendar Google
    refuses to watch. Coalesces with pending syncs; constant queries per batch. Returns the
    number of syncs enqueued."""
    enqueued = 0
    candidates = selectors.calendars_to_reconcile()
    for batch in keyset_batches(candidates, batch_size=batch_size, fields=("pk",)):
        enqueued += calendar_syncs_request(batch)
    logger.info("google reconciliation syncs enqueued=%d", enqueued)
    return enqueued
