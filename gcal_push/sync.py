"""Incremental sync of one Google calendar into its bookings (docs/design.md 1.4).

One sync at a time per calendar. Two mechanisms, both in the database:

* a **lease** on the calendar's :class:`~gcal_push.models.GoogleCalendarSyncState` row
  (``sync_lease_owner``/``sync_lease_expires_at``), taken by a conditional ``UPDATE``, keeps
  a second worker from listing the same calendar while one is at it. Listing happens outside
  any transaction, so the webhook's tiny ``UPDATE`` never waits behind a Google call (on
  SQLite a transaction holds the whole database's write lock);
* the **application** of a listing runs in one transaction that first takes the row lock
  (``select_for_update``: a row lock on PostgreSQL; on SQLite the ``IMMEDIATE`` transaction
  holds the database's write lock, which serialises the same way) and checks that the lease
  is still ours and that the stored sync token is the one the listing started from. All
  changed bookings and the new token are written in that transaction, so the token is saved
  only with the changes it covers, and a worker whose lease expired can never apply a
  listing twice.

A sync loops while the calendar is dirty: it clears ``dirty`` before listing, and at the end
gives up the lease and the ``sync_pending`` claim in one ``UPDATE`` that matches only if no
notification set ``dirty`` meanwhile; otherwise it lists again — after
``GOOGLE_SYNC_DEBOUNCE_SECONDS``, through the queue, so that a burst still arriving
coalesces into that next listing.

Each listed event that belongs to a booking is applied by
:func:`gcal_push.mapping.booking_event_apply` (which also applies the events that a publish
or a decision reads): what was seen is recorded, and a state older than the one seen last
is ignored. Listings ask for ``showDeleted=true``, so that a deleted event still shows its
attendees' answers.

Calendar API references: guides/sync (sync tokens, pages, 410 ``fullSyncRequired``),
v3/reference/events (``status``, ``attendees[].responseStatus``, ``attendees[].self``).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from calendars.enqueue import enqueue_on_commit
from calendars.metrics import counter_increment
from calendars.models import Booking, Calendar, Provider, PublishState
from calendars.providers import ProviderError, TransientProviderError, google
from gcal_push.credentials import google_client
from gcal_push.mapping import (
    BookingAction,
    EventChange,
    booking_action_apply,
    booking_actions,
    booking_event_apply,
)
from gcal_push.models import GoogleCalendarSyncState
from gcal_push.revocation import google_calendars_revoked
from gcal_push.tasks import calendar_sync_task

logger = logging.getLogger(__name__)

SYNC_LEASE = dt.timedelta(minutes=5)
# Loop while dirty, but never forever: a calendar notified faster than it can be listed is
# handed back to the queue after this many rounds.
SYNC_MAX_ROUNDS = 5
# A listing longer than this many pages is a fault, not a calendar (2,500 events a page).
SYNC_MAX_PAGES = 2000
# Bookings are loaded and applied this many events at a time (one query per chunk).
APPLY_CHUNK = 500
# The full resync after a 410 lists from the first active booking's start, less this margin.
FULL_SYNC_MARGIN = dt.timedelta(days=1)


class SyncOutcome(StrEnum):
    SYNCED = "synced"
    # Another worker holds the lease; it was told to loop once more.
    BUSY = "busy"
    # Nothing to sync: no sync state, or the calendar is not a connected Google calendar.
    SKIPPED = "skipped"
    # Still dirty after SYNC_MAX_ROUNDS: a new task was queued.
    REQUEUED = "requeued"
    # The grant was revoked: channels torn down, calendar marked.
    REVOKED = "revoked"


@dataclass
class SyncReport:
    outcome: SyncOutcome
    rounds: int = 0
    pages: int = 0
    list_calls: int = 0
    full_resyncs: int = 0
    bookings_changed: int = 0


class _LeaseLost(Exception):
    """Our lease expired and another worker took the calendar over: drop this listing."""


@dataclass
class _Listing:
    """A listing's outcome: the changes that concern bookings, and the token covering them."""

    changes: dict[str, google.Event] = field(default_factory=dict)
    next_sync_token: str = ""
    full: bool = False
    # A full listing covers the events ending after this moment.
    window_start: dt.datetime | None = None
    started_at: dt.datetime = field(default_factory=timezone.now)
    # Every event id the listing returned that belongs to a booking (full listings only).
    seen_event_ids: set[str] = field(default_factory=set)


def _lease_acquire(*, calendar_id: int, owner: str, now: dt.datetime) -> bool:
    return bool(
        GoogleCalendarSyncState.objects.filter(pk=calendar_id)
        .filter(Q(sync_lease_owner="") | Q(sync_lease_expires_at__lt=now))
        .update(sync_lease_owner=owner, sync_lease_expires_at=now + SYNC_LEASE)
    )


def _lease_extend(*, calendar_id: int, owner: str) -> None:
    extended = GoogleCalendarSyncState.objects.filter(
        pk=calendar_id, sync_lease_owner=owner
    ).update(sync_lease_expires_at=timezone.now() + SYNC_LEASE)
    if not extended:
        raise _LeaseLost


def _lease_release_if_clean(*, calendar_id: int, owner: str) -> bool:
    """Give up the lease and the pending claim, unless a notification made us dirty."""
    return bool(
        GoogleCalendarSyncState.objects.filter(
            pk=calendar_id, sync_lease_owner=owner, dirty=False
        ).update(
            sync_lease_owner="",
            sync_lease_expires_at=None,
            sync_pending=False,
            pending_since=None,
        )
    )


def _lease_release_after_failure(*, calendar_id: int, owner: str, reason: str) -> None:
    """Give everything up and leave the calendar dirty, so that the next sync redoes it."""
    GoogleCalendarSyncState.objects.filter(pk=calendar_id, sync_lease_owner=owner).update(
        sync_lease_owner="",
        sync_lease_expires_at=None,
        sync_pending=False,
        pending_since=None,
        dirty=True,
        failure_count=F("failure_count") + 1,
        last_error=reason[:200],
        last_failure_at=timezone.now(),
    )


def calendar_syncable(calendar: Calendar) -> bool:
    account = calendar.google_account
    return (
        calendar.provider == Provider.GOOGLE
        and calendar.connected
        and account is not None
        and not account.revoked
    )


def calendar_sync(*, calendar_id: int) -> SyncReport:
    """Bring the bookings of one Google calendar up to date with Google.

    Returns at once with ``BUSY`` when another worker is syncing the calendar (after
    setting ``dirty`` so that worker lists once more). A revoked grant tears the calendar's
    channels down. Transient errors (rate limits, 5xx after the adapter's own retries,
    timeouts) are raised after recording the failure and leaving the calendar dirty: the
    task retries them with backoff, and no change is lost since the token did not move.
    """
    owner = uuid.uuid4().hex
    report = SyncReport(outcome=SyncOutcome.SYNCED)
    if not _lease_acquire(calendar_id=calendar_id, owner=owner, now=timezone.now()):
        marked = GoogleCalendarSyncState.objects.filter(pk=calendar_id).update(dirty=True)
        report.outcome = SyncOutcome.BUSY if marked else SyncOutcome.SKIPPED
        return report
    calendar = Calendar.objects.select_related("google_account").filter(pk=calendar_id).first()
    if calendar is None or not calendar_syncable(calendar):
        GoogleCalendarSyncState.objects.filter(pk=calendar_id, sync_lease_owner=owner).update(
            sync_lease_owner="",
            sync_lease_expires_at=None,
            sync_pending=False,
            pending_since=None,
            dirty=False,
        )
        report.outcome = SyncOutcome.SKIPPED
        return report
    try:
        assert calendar.google_account is not None
        client = google_client(calendar.google_account)
        debounce = settings.GOOGLE_SYNC_DEBOUNCE_SECONDS
        for _ in range(SYNC_MAX_ROUNDS):
            report.rounds += 1
            GoogleCalendarSyncState.objects.filter(pk=calendar_id, sync_lease_owner=owner).update(
                dirty=False, sync_lease_expires_at=timezone.now() + SYNC_LEASE
            )
            _sync_round(client=client, calendar=calendar, owner=owner, report=report)
            if _lease_release_if_clean(calendar_id=calendar_id, owner=owner):
                counter_increment("convoke_google_syncs", outcome="synced")
                return report
            if debounce:
                # Notified while listing: the burst is still arriving. List again after the
                # debounce rather than at once, so that the rest of it coalesces too.
                break
        # Still dirty: hand the calendar back to the queue (it keeps its pending claim).
        GoogleCalendarSyncState.objects.filter(pk=calendar_id, sync_lease_owner=owner).update(
            sync_lease_owner="", sync_lease_expires_at=None, pending_since=timezone.now()
        )
        enqueue_on_commit(calendar_sync_task, calendar_id, countdown=debounce or None)
        report.outcome = SyncOutcome.REQUEUED
        return report
    except _LeaseLost:
        # Our lease expired and another worker took the calendar over; it applies the changes.
        logger.warning("google sync lease lost calendar=%s", calendar_id)
        report.outcome = SyncOutcome.BUSY
        return report
    except google.AuthRevoked:
        _lease_release_after_failure(calendar_id=calendar_id, owner=owner, reason="auth-revoked")
        google_calendars_revoked({calendar_id})
        counter_increment("convoke_google_syncs", outcome="revoked")
        report.outcome = SyncOutcome.REVOKED
        return report
    except TransientProviderError as exc:
        _lease_release_after_failure(calendar_id=calendar_id, owner=owner, reason=exc.reason)
        counter_increment("convoke_google_syncs", outcome="transient_failure")
        logger.warning("google sync failed calendar=%s reason=%s", calendar_id, exc.reason)
        raise
    except ProviderError as exc:
        _lease_release_after_failure(calendar_id=calendar_id, owner=owner, reason=exc.reason)
        counter_increment("convoke_google_syncs", outcome="failure")
        logger.error("google sync failed calendar=%s reason=%s", calendar_id, exc.reason)
        raise
    except Exception:
        _lease_release_after_failure(calendar_id=calendar_id, owner=owner, reason="internal")
        counter_increment("convoke_google_syncs", outcome="failure")
        logger.exception("google sync failed calendar=%s", calendar_id)
        raise


def _sync_round(
    *,
    client: google.GoogleCalendarClient,
    calendar: Calendar,
    owner: str,
    report: SyncReport,
) -> None:
    start_token = (
        GoogleCalendarSyncState.objects.filter(pk=calendar.pk)
        .values_list("sync_token", flat=True)
        .get()
    )
    listing: _Listing | None = None
    if start_token:
        try:
            listing = _collect(
                client=client,
                calendar=calendar,
                owner=owner,
                sync_token=start_token,
                report=report,
            )
        except google.SyncTokenInvalid:
            # 410 fullSyncRequired: the changes in the gap are found by a full listing and a
            # reconciliation, never by just fetching a fresh token (guides/sync).
            logger.info("google sync token invalid calendar=%s; full resync", calendar.pk)
    if listing is None:
        report.full_resyncs += 1
        listing = _collect(
            client=client,
            calendar=calendar,
            owner=owner,
            sync_token="",
            report=report,
            window_start=_full_sync_window_start(calendar_id=calendar.pk),
        )
    report.bookings_changed += _apply(
        calendar=calendar, owner=owner, start_token=start_token, listing=listing
    )


def _full_sync_window_start(*, calendar_id: int) -> dt.datetime:
    """Where a full listing starts: before every active booking of the calendar, and never
    later than a day ago (the bookings' range; Google lists every later event)."""
    first = (
        Booking.objects.filter(calendar_id=calendar_id, google_event_id__isnull=False)
        .active()
        .aggregate(first=Min("start"))["first"]
    )
    now = timezone.now()
    return min(first or now, now) - FULL_SYNC_MARGIN


def _collect(
    *,
    client: google.GoogleCalendarClient,
    calendar: Calendar,
    owner: str,
    sync_token: str,
    report: SyncReport,
    window_start: dt.datetime | None = None,
) -> _Listing:
    """List every page (incremental with ``sync_token``, else full from the window's start).

    Keeps only the events that belong to a booking of this calendar: one query per page
    (plus the lease's extension). Nothing else is written, so a failure between pages leaves
    the stored token and every booking as they were.
    """
    listing = _Listing(full=not sync_token, window_start=window_start)
    page_token: str | None = None
    for _ in range(SYNC_MAX_PAGES):
        report.list_calls += 1
        page = client.events_page(
            calendar_id=calendar.remote_id,
            sync_token=sync_token or None,
            page_token=page_token,
            time_min=None if sync_token else window_start,
            # A deleted event keeps its details (attendees' answers) on the organizer's
            # calendar only with showDeleted; it must be the same in the full listing that
            # made the token (guides/sync).
            show_deleted=True,
        )
        report.pages += 1
        _lease_extend(calendar_id=calendar.pk, owner=owner)
        if page.events:
            ids = [event.id for event in page.events if event.id]
            known = set(
                Booking.objects.filter(
                    calendar_id=calendar.pk, google_event_id__in=ids
                ).values_list("google_event_id", flat=True)
            )
            for event in page.events:
                if event.id in known:
                    # A later page holds the newer state of an event listed twice.
                    listing.changes[event.id] = event
                    if listing.full:
                        listing.seen_event_ids.add(event.id)
        if not page.next_page_token:
            if not page.next_sync_token:
                raise google.Unavailable(
                    "events.list ended without nextSyncToken", reason="noSyncToken"
                )
            listing.next_sync_token = page.next_sync_token
            return listing
        page_token = page.next_page_token
    raise google.Unavailable(f"events.list exceeded {SYNC_MAX_PAGES} pages", reason="tooManyPages")


def _apply(*, calendar: Calendar, owner: str, start_token: str, listing: _Listing) -> int:
    """Apply a listing and store its token in one transaction. Returns bookings changed."""
    changed = 0
    with transaction.atomic():
        state = GoogleCalendarSyncState.objects.select_for_update().get(pk=calendar.pk)
        if state.sync_lease_owner != owner or state.sync_token != start_token:
            raise _LeaseLost
        event_ids = list(listing.changes)
        for start in range(0, len(event_ids), APPLY_CHUNK):
            chunk = event_ids[start : start + APPLY_CHUNK]
            bookings = Booking.objects.filter(calendar_id=calendar.pk, google_event_id__in=chunk)
            for booking in bookings:
                assert booking.google_event_id is not None
                event = listing.changes[booking.google_event_id]
                if _already_applied(booking, event):
                    continue  # our own write coming back, or a full listing: no query
                changed += int(booking_event_apply(booking_id=booking.pk, event=event))
        if listing.full:
            changed += _reconcile_missing(calendar=calendar, listing=listing)
        now = timezone.now()
        state.sync_token = listing.next_sync_token
        state.last_synced_at = now
        update_fields = ["sync_token", "last_synced_at"]
        if listing.full:
            state.last_full_sync_at = now
            update_fields.append("last_full_sync_at")
        state.failure_count = 0
        state.last_error = ""
        update_fields += ["failure_count", "last_error"]
        state.save(update_fields=update_fields)
    return changed


def _already_applied(booking: Booking, event: google.Event) -> bool:
    """The event is the state last seen (same ETag) and asks nothing of the booking."""
    return (
        bool(event.etag)
        and booking.google_etag == event.etag
        and not booking_actions(booking=booking, change=EventChange.from_event(event))
    )


def _reconcile_missing(*, calendar: Calendar, listing: _Listing) -> int:
    """After a full listing, cancel the bookings whose event Google no longer lists.

    Only bookings whose event existed before the listing began are judged (synced, and not
    touched since): an event inserted during the listing is simply not in it yet. One query
    per chunk of bookings.
    """
    assert listing.window_start is not None
    candidates = Booking.objects.active().filter(
        calendar_id=calendar.pk,
        google_event_id__isnull=False,
        publish_state=PublishState.PUBLISHED,
        end__gt=listing.window_start,
        updated_at__lt=listing.started_at,
    )
    changed = 0
    for booking in candidates.iterator(chunk_size=APPLY_CHUNK):
        if booking.google_event_id not in listing.seen_event_ids:
            changed += _apply_actions(booking, [BookingAction.CANCEL])
    return changed


def _apply_actions(booking: Booking, actions: list[BookingAction]) -> int:
    changed = [booking_action_apply(booking=booking, action=action) for action in actions]
    return int(any(changed))
