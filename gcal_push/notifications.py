"""Push notifications: verify, mark the calendar dirty, enqueue at most one sync.

Google posts a notification for every change on a watched calendar and never says what
changed (Calendar API, guides/push). The webhook therefore does three cheap things and
nothing else — no Google call, no listing:

1. find the channel by ``X-Goog-Channel-ID`` and check ``X-Goog-Resource-ID`` and the
   channel token (``hmac.compare_digest``);
2. on ``exists``/``not_exists``, set the calendar's ``dirty`` flag;
3. flip ``sync_pending`` from false to true in one conditional ``UPDATE``; only the request
   whose ``UPDATE`` matched enqueues the sync task. Every other notification of a storm
   finds the flag already set and coalesces into that task: the database, not a process,
   guarantees one queued sync per calendar.

The sync clears ``sync_pending`` only when it finds ``dirty`` false (see
:mod:`gcal_push.sync`), so a notification that arrives while a sync runs is never lost.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from calendars.enqueue import enqueue, enqueue_on_commit
from calendars.metrics import counter_increment
from gcal_push.models import (
    CHANNEL_ID_MAX_LENGTH,
    CHANNEL_TOKEN_MAX_LENGTH,
    ChannelState,
    GoogleCalendarChannel,
    GoogleCalendarSyncState,
)
from gcal_push.tasks import calendar_sync_task

logger = logging.getLogger(__name__)

# A claimed ``sync_pending`` older than this is presumed lost (a task dropped by the broker
# or a worker killed before it started) and may be claimed again. A duplicate task is
# harmless: syncs of one calendar are serialised by the sync lease.
SYNC_PENDING_STALE = dt.timedelta(minutes=10)
RESOURCE_ID_MAX_LENGTH = 255
# A channel's ``last_notification_at`` (shown to operators) is written at most this often: a
# storm of notifications for one calendar writes it once, not once per notification.
NOTIFICATION_TIME_PRECISION = dt.timedelta(seconds=60)


class ResourceState(StrEnum):
    """``X-Goog-Resource-State`` values for an events watch (guides/push)."""

    SYNC = "sync"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"


class NotificationOutcome(StrEnum):
    """What the webhook did with a notification; also the ``outcome`` metric label."""

    SYNC_ACKNOWLEDGED = "sync_acknowledged"
    SYNC_ENQUEUED = "sync_enqueued"
    COALESCED = "coalesced"
    UNKNOWN_CHANNEL = "unknown_channel"
    STOPPED_CHANNEL = "stopped_channel"
    BAD_TOKEN = "bad_token"  # noqa: S105 (an outcome label, not a secret)
    RESOURCE_MISMATCH = "resource_mismatch"
    UNKNOWN_STATE = "unknown_state"


IGNORED_OUTCOMES = frozenset(
    {
        NotificationOutcome.UNKNOWN_CHANNEL,
        NotificationOutcome.STOPPED_CHANNEL,
        NotificationOutcome.BAD_TOKEN,
        NotificationOutcome.RESOURCE_MISMATCH,
        NotificationOutcome.UNKNOWN_STATE,
    }
)


class NotificationNotRecorded(Exception):
    """The database refused the dirty mark; the sender should retry (answer 503)."""


@dataclass(frozen=True)
class Notification:
    """The headers of one notification. Google sends no body (guides/push)."""

    channel_id: str
    token: str
    resource_id: str
    resource_state: str
    message_number: str = ""


class SyncRequest(StrEnum):
    """What :func:`calendar_sync_request` did."""

    ENQUEUED = "enqueued"
    COALESCED = "coalesced"


def _secret_equal(presented: str, stored: str) -> bool:
    # Header values may hold any latin-1 text: compare bytes, which compare_digest accepts.
    return hmac.compare_digest(presented.encode("utf-8"), stored.encode("utf-8"))


def _state_label(resource_state: str) -> str:
    return resource_state if resource_state in ResourceState.__members__.values() else "other"


def notification_receive(*, notification: Notification) -> NotificationOutcome:
    """Verify a notification and, for a change, request one coalesced sync.

    Never calls Google. Refused notifications (unknown or stopped channel, wrong token or
    resource) change nothing and return their reason: the caller still answers 200, since
    Google does not retry a 4xx and a 5xx would make it retry. Raises
    :class:`NotificationNotRecorded` only when the database refuses the dirty mark.
    """
    try:
        outcome = _receive(notification)
    except DatabaseError as exc:
        counter_increment(
            "convoke_webhook_notifications",
            state=_state_label(notification.resource_state),
            outcome="not_recorded",
        )
        logger.error("google notification not recorded reason=database-error")
        raise NotificationNotRecorded from exc
    counter_increment(
        "convoke_webhook_notifications",
        state=_state_label(notification.resource_state),
        outcome=outcome,
    )
    return outcome


def _receive(notification: Notification) -> NotificationOutcome:
    channel_id = notification.channel_id
    if not channel_id or len(channel_id) > CHANNEL_ID_MAX_LENGTH:
        logger.info("google notification ignored reason=unknown-channel")
        return NotificationOutcome.UNKNOWN_CHANNEL
    channel = (
        GoogleCalendarChannel.objects.filter(channel_id=channel_id)
        .only("pk", "calendar_id", "token", "resource_id", "state", "last_notification_at")
        .first()
    )
    if channel is None:
        logger.info("google notification ignored reason=unknown-channel")
        return NotificationOutcome.UNKNOWN_CHANNEL
    if len(notification.token) > CHANNEL_TOKEN_MAX_LENGTH or not _secret_equal(
        notification.token, channel.token
    ):
        logger.warning("google notification ignored reason=bad-token channel=%s", channel.pk)
        return NotificationOutcome.BAD_TOKEN
    if channel.state == ChannelState.STOPPED:
        # Google may still deliver briefly after channels.stop (guides/push).
        logger.info("google notification ignored reason=stopped-channel channel=%s", channel.pk)
        return NotificationOutcome.STOPPED_CHANNEL
    # A pending channel has no resource id yet: the sync message may beat the watch response.
    if channel.resource_id and (
        len(notification.resource_id) > RESOURCE_ID_MAX_LENGTH
        or not _secret_equal(notification.resource_id, channel.resource_id)
    ):
        logger.warning(
            "google notification ignored reason=resource-mismatch channel=%s", channel.pk
        )
        return NotificationOutcome.RESOURCE_MISMATCH
    now = timezone.now()
    seen = channel.last_notification_at
    if seen is None or now - seen >= NOTIFICATION_TIME_PRECISION or seen > now:
        GoogleCalendarChannel.objects.filter(pk=channel.pk).update(last_notification_at=now)
    if notification.resource_state == ResourceState.SYNC:
        return NotificationOutcome.SYNC_ACKNOWLEDGED
    if notification.resource_state not in (ResourceState.EXISTS, ResourceState.NOT_EXISTS):
        logger.warning("google notification ignored reason=unknown-state channel=%s", channel.pk)
        return NotificationOutcome.UNKNOWN_STATE
    request = calendar_sync_request(calendar_id=channel.calendar_id, now=now)
    return (
        NotificationOutcome.SYNC_ENQUEUED
        if request == SyncRequest.ENQUEUED
        else NotificationOutcome.COALESCED
    )


def calendar_sync_request(
    *, calendar_id: int, now: dt.datetime | None = None, notified: bool = True
) -> SyncRequest:
    """Mark a calendar dirty and enqueue a sync unless one is already pending.

    One statement, atomic: the dirty mark and the claim of ``sync_pending`` that only one
    concurrent caller can win (:func:`_mark_and_claim`). Raises ``DatabaseError`` when the
    mark cannot be recorded.
    """
    now = now or timezone.now()
    claimed = _mark_and_claim(calendar_id=calendar_id, now=now, notified=notified)
    if claimed is None:
        # A channel always has its state row (channel_create writes it first); recreate it
        # rather than lose the mark if an operator deleted it.
        GoogleCalendarSyncState.objects.bulk_create(
            [GoogleCalendarSyncState(calendar_id=calendar_id, dirty=True)],
            ignore_conflicts=True,
        )
        claimed = _mark_and_claim(calendar_id=calendar_id, now=now, notified=notified)
    if not claimed:
        return SyncRequest.COALESCED
    _enqueue_sync(calendar_id=calendar_id, claimed_at=now)
    return SyncRequest.ENQUEUED


def _mark_and_claim(*, calendar_id: int, now: dt.datetime, notified: bool) -> bool | None:
    """Set ``dirty`` (and ``last_notification_at``) and, when ``sync_pending`` is false or
    its claim is stale, claim it, in one ``UPDATE``: True when this call claimed it, False
    when a sync was pending already, None when the calendar has no state row. The SET
    clauses read the row as it was, so exactly one of concurrent callers sees its own claim
    time come back. Only constants and quoted names are formatted in; values are parameters.
    """
    meta = GoogleCalendarSyncState._meta
    table, key = (
        connection.ops.quote_name(meta.db_table),
        connection.ops.quote_name(str(meta.pk.column)),
    )
    stamp = connection.ops.adapt_datetimefield_value(now)
    stale = connection.ops.adapt_datetimefield_value(now - SYNC_PENDING_STALE)
    noted = ", last_notification_at = %s" if notified else ""
    sql = (
        f"UPDATE {table} SET dirty = %s{noted}, sync_pending = %s, "  # noqa: S608
        "pending_since = CASE WHEN sync_pending = %s OR pending_since < %s THEN %s "
        f"ELSE pending_since END WHERE {key} = %s RETURNING pending_since = %s"
    )
    params = [True, *([stamp] if notified else []), True, False, stale, stamp, calendar_id, stamp]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return None if row is None else bool(row[0])


def calendar_syncs_request(calendar_ids: Iterable[int]) -> int:
    """:func:`calendar_sync_request` for many calendars in a constant number of queries (the
    periodic reconciliation, new channels). Returns how many syncs were enqueued."""
    ids = list(calendar_ids)
    if not ids:
        return 0
    now = timezone.now()
    GoogleCalendarSyncState.objects.filter(pk__in=ids).update(dirty=True)
    GoogleCalendarSyncState.objects.filter(pk__in=ids).filter(
        Q(sync_pending=False) | Q(pending_since__lt=now - SYNC_PENDING_STALE)
    ).update(sync_pending=True, pending_since=now)
    claimed = list(
        GoogleCalendarSyncState.objects.filter(pk__in=ids, pending_since=now).values_list(
            "pk", flat=True
        )
    )
    for calendar_id in claimed:
        enqueue_on_commit(calendar_sync_task, calendar_id)
    return len(claimed)


def _enqueue_sync(*, calendar_id: int, claimed_at: dt.datetime) -> None:
    # A short delay lets the rest of a burst coalesce into this sync before it lists.
    countdown = settings.GOOGLE_SYNC_DEBOUNCE_SECONDS or None
    if transaction.get_connection().in_atomic_block:
        enqueue_on_commit(calendar_sync_task, calendar_id, countdown=countdown)
        return
    if not enqueue(calendar_sync_task, calendar_id, countdown=countdown):
        # The dirty mark stands (the periodic reconciliation will sync); give the claim
        # back so that the next notification tries to enqueue again.
        GoogleCalendarSyncState.objects.filter(
            pk=calendar_id, sync_pending=True, pending_since=claimed_at
        ).update(sync_pending=False, pending_since=None)
        logger.error("google sync not enqueued calendar=%s reason=broker-error", calendar_id)
