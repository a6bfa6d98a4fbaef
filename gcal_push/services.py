"""Google push notifications: the entry points the rest of Convoke calls (DESIGN.md 1.4).

A watch channel exists exactly for each connected Google calendar that is some active
schedule's calendar.

* :func:`calendar_watch_start` / :func:`calendar_watch_stop`: called by the booking code when
  a schedule's calendar changed (after the commit), or an account is being disconnected.
  The first enqueues :func:`channel_create`; the second runs :func:`channel_teardown` at once,
  while the grant still works.
* :func:`channel_create`: a channel for one calendar, written ``pending`` before
  ``events.watch`` is called; its first sync takes the initial sync token with a full
  listing. Idempotent; a failure leaves no live channel behind.
* :func:`channel_teardown`: stops the channels of a calendar (``channels.stop``, with the
  adapter's retries; 404 means done).
* :func:`channels_maintain`: the hourly beat task's work: renewal, then cleanup and backfill.
* :func:`calendars_reconcile`: the periodic sync of every watched calendar, since Google
  drops some notifications (guides/push).
* :func:`calendar_grant_revoked`: the account's grant was revoked: tear down and mark.
* :func:`channel_renew_now`, :func:`calendar_resync`: the operators' levers (admin actions).

The batch engine is :mod:`gcal_push.channels`, the webhook's work :mod:`gcal_push.notifications`,
the sync :mod:`gcal_push.sync`.
"""

from __future__ import annotations

import datetime as dt
import logging

from gcal_push import selectors
from gcal_push.channels import (
    ChannelRunSummary,
    channels_backfill,
    channels_renew,
    channels_teardown,
    grant_revoked_mark,
)
from gcal_push.notifications import SyncRequest, calendar_sync_request, calendar_syncs_request

logger = logging.getLogger(__name__)

RENEWAL_WINDOW = dt.timedelta(hours=24)
RECONCILE_BATCH_SIZE = 500
# "Whatever its expiration": a cutoff beyond any channel Google grants (at most a month).
RENEW_NOW_WINDOW = dt.timedelta(days=3650)


def calendar_watch_start(*, calendar_id: int) -> None:
    """Make sure the calendar gets a watch channel, if it is one to watch (after commit)."""
    from gcal_push.tasks import channel_create_task

    channel_create_task.delay_on_commit(calendar_id)


def calendar_watch_stop(*, calendar_id: int) -> None:
    """Stop the calendar's channels now, while the account's grant still works (only the
    creator of a channel can stop it, and a disconnect revokes the grant right after).

    The caller decided that the calendar is no longer to be watched. What could not be
    stopped (a transient Google error) stays retiring and is retried by a task.
    """
    from gcal_push.tasks import channel_teardown_task

    summary = channel_teardown(calendar_id=calendar_id)
    if summary.busy or summary.transient_failures:
        channel_teardown_task.delay_on_commit(calendar_id)


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
    last_pk = 0
    candidates = selectors.calendars_to_reconcile()
    while True:
        batch = list(
            candidates.filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not batch:
            break
        last_pk = batch[-1]
        enqueued += calendar_syncs_request(batch)
    logger.info("google reconciliation syncs enqueued=%d", enqueued)
    return enqueued


def calendar_grant_revoked(*, calendar_id: int) -> None:
    """Google refused the account's refresh token: tear its channels down and mark it."""
    grant_revoked_mark({calendar_id})
