"""The sync under Google's awkward answers: pages (empty ones too), 410, 429/503, a crash
between pages, a revoked grant, two workers at once."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from calendars.models import Booking, BookingStatus, Calendar, GoogleAccount, TransitionSource
from calendars.providers import google as google_provider
from calendars.services import booking_request
from gcal_push.models import ChannelState, GoogleCalendarChannel, GoogleCalendarSyncState
from gcal_push.services import channel_create
from gcal_push.sync import SyncOutcome, calendar_sync
from tests.fixtures import (
    PushFakeGoogleCalendar,
    TaskQueue,
    Watched,
    owner_create,
    watched_create,
)

pytestmark = pytest.mark.django_db(transaction=True)

BOOKEE = "bookee@example.net"


def watched_with_booking(
    google: PushFakeGoogleCalendar, task_queue: TaskQueue, *, n: int = 1, bookings: int = 1
) -> tuple[Watched, list[Booking]]:
    """A watched calendar with a sync token and ``bookings`` requested bookings whose events
    are at Google."""
    watched = watched_create(google, owner_create(google, n=n))[0]
    channel_create(calendar_id=watched.calendar.pk)
    start = (timezone.now() + dt.timedelta(days=3)).replace(
        hour=8, minute=0, second=0, microsecond=0
    )
    made = [
        booking_request(
            schedule_id=watched.schedule.pk,
            attendee_name="Bob",
            attendee_email=BOOKEE if i == 0 else f"bookee{i}@example.net",
            start=start + dt.timedelta(hours=i),
        )
        for i in range(bookings)
    ]
    task_queue.drain()
    for booking in made:
        booking.refresh_from_db()
        assert booking.google_event_id
    return watched, made


def token(watched: Watched) -> str:
    return GoogleCalendarSyncState.objects.get(pk=watched.calendar.pk).sync_token


def seed_events(google: PushFakeGoogleCalendar, watched: Watched, count: int) -> None:
    """Events that belong to no booking (the subscriber's other appointments)."""
    start = timezone.now() + dt.timedelta(days=10)
    for i in range(count):
        google.event_seed(
            watched.remote_id,
            {
                "summary": f"Other {i}",
                "start": {"dateTime": (start + dt.timedelta(hours=i)).isoformat()},
                "end": {"dateTime": (start + dt.timedelta(hours=i, minutes=30)).isoformat()},
            },
        )


def decline(google: PushFakeGoogleCalendar, watched: Watched, booking: Booking) -> None:
    google.attendee_respond(
        watched.remote_id,
        booking.google_event_id or "",
        email=booking.attendee_email,
        response_status="declined",
    )


def declined_once(booking: Booking) -> bool:
    booking.refresh_from_db()
    transitions = booking.transitions.filter(
        to_status=BookingStatus.DECLINED, source=TransitionSource.GOOGLE_PUSH
    )
    return booking.status == BookingStatus.DECLINED and transitions.count() == 1


def test_every_page_is_followed_when_pages_are_empty_in_between(
    google: PushFakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched, [booking] = watched_with_booking(google, task_queue)
    seed_events(google, watched, 600)
    decline(google, watched, booking)  # the last change: on the last page
    google.empty_page_before_last = True
    lists = len(google.requests_for("events.list"))
    report = calendar_sync(calendar_id=watched.calendar.pk)
    assert report.outcome == SyncOutcome.SYNCED
    # 601 changes: 250 + 250 + an empty page + 101.
    assert (report.pages, report.list_calls) == (4, 4)
    assert len(google.requests_for("events.list")) - lists == 4
    pages = google.requests_for("events.list")[lists:]
    assert [bool(r.param("pageToken")) for r in pages] == [False, True, True, True]
    assert all(r.param("syncToken") for r in pages)
    assert declined_once(booking)


def test_queries_grow_by_a_constant_per_page_when_listings_are_longer(
    google: PushFakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    counts = []
    for n, extra in ((1, 300), (2, 1300)):
        watched, [booking] = watched_with_booking(google, task_queue, n=n)
        seed_events(google, watched, extra)
        decline(google, watched, booking)
        with CaptureQueriesContext(connection) as captured:
            report = calendar_sync(calendar_id=watched.calendar.pk)
        assert declined_once(booking)
        counts.append((report.pages, len(captured.captured_queries)))
    (pages_short, queries_short), (pages_long, queries_long) = counts
    assert (pages_short, pages_long) == (2, 6)
    # Two queries per page (the bookings of the page, the lease), whatever the page holds;
    # counting its events.list call on /metrics touches no database.
    assert queries_long - queries_short == 2 * (pages_long - pages_short)
    assert queries_short <= 60


def test_full_resync_costs_the_same_queries_for_3_or_30_unchanged_bookings_when_listed(
    google: PushFakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    # Every booking's event comes back in a full listing; one already seen (same ETag, asking
    # nothing of its booking) costs no query, so the loop stays constant per page.
    counts = []
    for n, bookings in ((1, 3), (2, 30)):
        watched, made = watched_with_booking(google, task_queue, n=n, bookings=bookings)
        assert all(b.google_etag for b in made)
        google.sync_tokens_invalidate(watched.remote_id)
        with CaptureQueriesContext(connection) as captured:
            report = calendar_sync(calendar_id=watched.calendar.pk)
        assert (report.full_resyncs, report.bookings_changed, report.pages) == (1, 0, 1)
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]


def test_full_resync_reconciles_every_booking_when_the_token_is_gone(
    google: PushFakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched, [declined, deleted, untouched] = watched_with_booking(google, task_queue, bookings=3)
    old_token = token(watched)
    # During the gap: the bookee declines, the owner deletes another event, and Google
    # invalidates the sync token (410 fullSyncRequired).
    decline(google, watched, declined)
    google.event_delete_as_owner(watched.remote_id, deleted.google_event_id or "")
    google.sync_tokens_invalidate(watched.remote_id)
    lists = len(google.requests_for("events.list"))

    report = calendar_sync(calendar_id=watched.calendar.pk)

    assert report.full_resyncs == 1
    first, second = google.requests_for("events.list")[lists:]
    assert (first.param("syncToken"), first.status) == (old_token, 410)
    assert second.param("syncToken") is None and second.param("timeMin")
    assert declined_once(declined)
    deleted.refresh_from_db()
    untouched.refresh_from_db()
    assert (deleted.status, untouched.status) == (BookingStatus.CANCELLED, BookingStatus.REQUESTED)
    state = GoogleCalendarSyncState.objects.get(pk=watched.calendar.pk)
    assert state.sync_token not in ("", old_token)
    assert (
        state.last_full_sync_at is not None
        and state.last_full_sync_at >= state.last_synced_at - dt.timedelta(seconds=1)
    )
    # The new token works: the next sync is incremental and finds nothing new.
    again = calendar_sync(calendar_id=watched.calendar.pk)
    assert (again.full_resyncs, again.bookings_changed) == (0, 0)


def test_rate_limits_and_server_errors_are_retried_when_listing(
    google: PushFakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched, [booking] = watched_with_booking(google, task_queue)
    decline(google, watched, booking)
    google.fault_add(operation="events.list", status=429)
    google.fault_add(operation="events.list", status=503)
    lists = len(google.requests_for("events.list"))
    report = calendar_sync(calendar_id=watched.calendar.pk)
    assert report.outcome == SyncOutcome.SYNCED
    assert [r.status for r in google.requests_for("events.list")[lists:]] == [429, 503, 200]
    assert declined_once(booking)


def test_nothing_is_lost_when_an_outage_outlasts_the_retries(
    google: PushFakeGoogleCalendar, task_queue: TaskQueue, settings: Any
) -> None:
    watched, [booking] = watched_with_booking(google, task_queue)
    before = token(watched)
    decline(google, watched, booking)
    settings.GOOGLE_API_MAX_RETRIES = 1
    google.fault_add(operation="events.list", status=503, times=2)
    with pytest.raises(google_provider.Unavailable):
        calendar_sync(calendar_id=watched.calendar.pk)
    booking.refresh_from_db()
    assert booking.status == BookingStatus.REQUESTED
    state = GoogleCalendarSyncState.objects.get(pk=watched.calendar.pk)
    assert (state.sync_token, state.dirty, state.sync_pending) == (before, True, False)
    assert (state.failure_count, state.last_error) == (1, "backendError")
    assert state.sync_lease_owner == ""
    # Through the task, which retries transient errors with backoff: still one application.
    google.fault_add(operation="events.list", status=503, times=2)
    from gcal_push.tasks import calendar_sync_task

    calendar_sync_task.delay(watched.calendar.pk)
    ran = task_queue.drain()
    # The sync task failed, was retried and synced; then the event's deletion.
    assert ran[0] == "gcal_push.tasks.calendar_sync_task"
    assert ran.count("gcal_push.tasks.calendar_sync_task") == 1
    assert "calendars.tasks.booking_publish_task" in ran
    assert declined_once(booking)
    assert len(google.requests_for("events.delete")) == 1
    state.refresh_from_db()
    assert (state.failure_count, state.last_error, state.dirty) == (0, "", False)


def test_token_is_not_advanced_when_the_sync_dies_between_pages(
    google: PushFakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched, [booking] = watched_with_booking(google, task_queue)
    before = token(watched)
    decline(google, watched, booking)  # on the first page
    seed_events(google, watched, 400)  # and two more pages
    google.drop_next_pages = True
    with pytest.raises(google_provider.Unavailable):
        calendar_sync(calendar_id=watched.calendar.pk)
    booking.refresh_from_db()
    assert booking.status == BookingStatus.REQUESTED  # page 1 was listed, nothing applied
    assert token(watched) == before
    assert not google.requests_for("events.delete")
    google.drop_next_pages = False
    report = calendar_sync(calendar_id=watched.calendar.pk)
    assert report.pages == 2
    task_queue.drain()
    assert declined_once(booking)
    assert len(google.requests_for("events.delete")) == 1
    assert token(watched) != before


def test_revoked_grant_tears_down_and_marks_the_calendar_when_syncing(
    google: PushFakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched, [booking] = watched_with_booking(google, task_queue)
    mail.outbox.clear()
    google.grant_revoke(subject=watched.owner.subject)
    google.access_tokens_expire(subject=watched.owner.subject)
    report = calendar_sync(calendar_id=watched.calendar.pk)
    assert report.outcome == SyncOutcome.REVOKED
    assert GoogleAccount.objects.get(pk=watched.owner.account.pk).revoked
    assert not Calendar.objects.get(pk=watched.calendar.pk).connected
    assert not GoogleCalendarChannel.objects.live().exists()
    assert GoogleCalendarChannel.objects.filter(state=ChannelState.STOPPED).count() == 1
    state = GoogleCalendarSyncState.objects.get(pk=watched.calendar.pk)
    assert state.grant_revoked_at is not None and not state.dirty
    task_queue.drain()
    assert len(mail.outbox) == 1  # the subscriber is told once, by the account code
    # A later sync of the disconnected calendar does nothing.
    assert calendar_sync(calendar_id=watched.calendar.pk).outcome == SyncOutcome.SKIPPED
    booking.refresh_from_db()
    assert booking.status == BookingStatus.REQUESTED


def test_second_sync_is_told_to_wait_when_one_is_running(
    google: PushFakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched, _ = watched_with_booking(google, task_queue)
    GoogleCalendarSyncState.objects.filter(pk=watched.calendar.pk).update(
        sync_lease_owner="another-worker",
        sync_lease_expires_at=timezone.now() + dt.timedelta(minutes=5),
        dirty=False,
    )
    lists = len(google.requests_for("events.list"))
    assert calendar_sync(calendar_id=watched.calendar.pk).outcome == SyncOutcome.BUSY
    assert len(google.requests_for("events.list")) == lists
    # The running sync will list once more before it lets go.
    assert GoogleCalendarSyncState.objects.get(pk=watched.calendar.pk).dirty
    # A worker that died keeps the calendar only until its lease expires.
    GoogleCalendarSyncState.objects.filter(pk=watched.calendar.pk).update(
        sync_lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    assert calendar_sync(calendar_id=watched.calendar.pk).outcome == SyncOutcome.SYNCED


@pytest.mark.postgres_only
def test_two_workers_apply_each_change_once_and_keep_the_newest_token_when_syncing_together(
    google: PushFakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched, bookings = watched_with_booking(google, task_queue, bookings=3)
    for booking in bookings:
        decline(google, watched, booking)
    # The first listing answers slowly, so that both workers are at it together.
    google.timeout_after_commit(operation="events.list", seconds=0.5, times=1)
    barrier = threading.Barrier(2)
    reports: list[Any] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            reports.append(calendar_sync(calendar_id=watched.calendar.pk))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(r.outcome for r in reports) == [SyncOutcome.BUSY, SyncOutcome.SYNCED]
    assert all(declined_once(booking) for booking in bookings)
    # The newest token: the next sync lists once and finds nothing.
    again = calendar_sync(calendar_id=watched.calendar.pk)
    assert (again.pages, again.bookings_changed, again.full_resyncs) == (1, 0, 0)
    assert GoogleCalendarSyncState.objects.get(pk=watched.calendar.pk).sync_token
