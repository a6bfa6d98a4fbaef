"""The sync: from a change in Google Calendar to the booking, through notifications, the
webhook, a real worker and the booking service, and back to Google (docs/design.md 1.3, 1.4)."""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from calendars.models import Booking, BookingStatus, PublishState, TransitionSource
from calendars.services import booking_request
from gcal_push.models import GoogleCalendarSyncState
from gcal_push.services import calendars_reconcile, channel_create
from tests.fakes.google_push import ClientTransport, GooglePushEmitter
from tests.fixtures import (
    Owner,
    PushFakeGoogleCalendar,
    TaskQueue,
    Watched,
    owner_create,
    settle,
    watched_create,
    worker_running,
)

pytestmark = pytest.mark.django_db(transaction=True)

BOOKEE = "bookee@example.net"


def slot(days: int = 2, hour: int = 10) -> dt.datetime:
    start = timezone.now() + dt.timedelta(days=days)
    return start.replace(hour=hour, minute=0, second=0, microsecond=0)


def book(watched: Watched, *, email: str = BOOKEE, days: int = 2, hour: int = 10) -> Booking:
    return booking_request(
        schedule_id=watched.schedule.pk,
        attendee_name="Bob Bookee",
        attendee_email=email,
        start=slot(days, hour),
    )


def subscriber_answers(
    status: str,
) -> Callable[[PushFakeGoogleCalendar, Owner, Watched, str], None]:
    def answer(fake: PushFakeGoogleCalendar, owner: Owner, watched: Watched, event_id: str) -> None:
        # The subscriber answers in Google: the organizer's own entry, which Convoke's insert
        # put on the event (the calendar's address; Google marks it organizer and self).
        fake.attendee_respond(
            watched.remote_id, event_id, email=watched.remote_id, response_status=status
        )

    return answer


def bookee_answers(status: str) -> Callable[[PushFakeGoogleCalendar, Owner, Watched, str], None]:
    def answer(fake: PushFakeGoogleCalendar, owner: Owner, watched: Watched, event_id: str) -> None:
        fake.attendee_respond(watched.remote_id, event_id, email=BOOKEE, response_status=status)

    return answer


def owner_deletes(
    fake: PushFakeGoogleCalendar, owner: Owner, watched: Watched, event_id: str
) -> None:
    fake.event_delete_as_owner(watched.remote_id, event_id)


WRITES = ("events.insert", "events.patch", "events.delete")


@pytest.mark.parametrize(
    ("answer", "status", "partstat", "writes", "outbox"),
    [
        pytest.param(
            bookee_answers("declined"),
            BookingStatus.DECLINED,
            "DECLINED",
            [("events.delete", "all", None)],
            [("cancellation", BOOKEE, "all")],
            id="bookee-declines",
        ),
        pytest.param(
            bookee_answers("accepted"),
            BookingStatus.REQUESTED,
            "ACCEPTED",
            [],
            [],
            id="bookee-accepts",
        ),
        pytest.param(
            bookee_answers("tentative"),
            BookingStatus.REQUESTED,
            "TENTATIVE",
            [],
            [],
            id="bookee-maybe",
        ),
        pytest.param(
            subscriber_answers("accepted"),
            BookingStatus.BOOKED,
            "",
            [("events.patch", "all", "confirmed")],
            [("update", BOOKEE, "all")],
            id="subscriber-accepts",
        ),
        pytest.param(
            subscriber_answers("declined"),
            BookingStatus.DECLINED,
            "",
            [("events.delete", "all", None)],
            [("cancellation", BOOKEE, "all")],
            id="subscriber-declines",
        ),
        pytest.param(
            owner_deletes,
            BookingStatus.CANCELLED,
            "",
            [],  # Google shows it deleted: no call for nothing
            [],
            id="event-deleted",
        ),
    ],
)
def test_answer_in_google_reaches_the_booking_and_google_when_notified(
    google: PushFakeGoogleCalendar,
    task_queue: TaskQueue,
    answer: Callable[[PushFakeGoogleCalendar, Owner, Watched, str], None],
    status: str,
    partstat: str,
    writes: list[tuple[str, str | None, str | None]],
    outbox: list[tuple[str, str, str]],
) -> None:
    owner = owner_create(google)
    watched = watched_create(google, owner)[0]
    emitter = GooglePushEmitter(google, ClientTransport(), immediate=False).start()
    channel_create(calendar_id=watched.calendar.pk)
    booking = book(watched)
    task_queue.drain(emitter)
    booking.refresh_from_db()
    assert (booking.status, booking.publish_state) == (
        BookingStatus.REQUESTED,
        PublishState.PUBLISHED,
    )
    assert [(m.kind, m.recipient) for m in google.outbox] == [("invitation", BOOKEE)]
    assert booking.google_event_id is not None
    calls = len(google.api_calls())
    mails = len(google.outbox)
    delivered = len(emitter.deliveries)

    answer(google, owner, watched, booking.google_event_id)
    ran = task_queue.drain(emitter)
    emitter.stop()

    assert "gcal_push.tasks.calendar_sync_task" in ran
    booking.refresh_from_db()
    assert booking.status == status
    assert booking.attendee_partstat == partstat
    assert booking.publish_state == PublishState.PUBLISHED
    assert [c for c in google.api_calls()[calls:] if c[0] in WRITES] == writes
    assert [(m.kind, m.recipient, m.send_updates) for m in google.outbox[mails:]] == outbox
    # Google told us through the webhook, which answered every notification with 200.
    assert len(emitter.deliveries) > delivered
    assert {d.status for d in emitter.deliveries[delivered:]} == {200}
    # Applied once, through the booking service, with the push as its source.
    pushed = booking.transitions.filter(source=TransitionSource.GOOGLE_PUSH)
    assert pushed.count() == 1


def test_webhook_makes_no_google_request_and_a_worker_syncs_later_when_notified(
    google: PushFakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    owner = owner_create(google)
    watched = watched_create(google, owner)[0]
    emitter = GooglePushEmitter(google, ClientTransport(), immediate=False).start()
    channel_create(calendar_id=watched.calendar.pk)
    booking = book(watched)
    task_queue.drain(emitter)
    booking.refresh_from_db()
    assert booking.google_event_id is not None
    google.attendee_respond(
        watched.remote_id, booking.google_event_id, email=BOOKEE, response_status="declined"
    )
    requests = len(google.requests)
    # No worker is running: the webhook acknowledges on its own, asking nothing of Google.
    [delivery] = emitter.flush()
    assert delivery.status == 200
    assert len(google.requests) == requests  # the fake's log
    booking.refresh_from_db()
    assert booking.status == BookingStatus.REQUESTED
    assert task_queue.size() == 1
    # A real worker does the work later.
    with worker_running(task_queue) as watch:
        settle(google, watch, task_queue)
    emitter.stop()
    booking.refresh_from_db()
    assert booking.status == BookingStatus.DECLINED
    assert google.requests[requests].operation == "events.list"
    assert [(m.kind, m.recipient) for m in google.outbox] == [
        ("invitation", BOOKEE),
        ("cancellation", BOOKEE),
    ]


def test_burst_of_500_notifications_costs_at_most_3_listings_and_applies_once_when_coalesced(
    google: PushFakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    owner = owner_create(google)
    watched = watched_create(google, owner)[0]
    channel_create(calendar_id=watched.calendar.pk)
    booking = book(watched)
    task_queue.drain()
    booking.refresh_from_db()
    assert booking.google_event_id is not None
    google.attendee_respond(
        watched.remote_id, booking.google_event_id, email=BOOKEE, response_status="declined"
    )
    emitter = GooglePushEmitter(google, ClientTransport())
    lists = len(google.requests_for("events.list"))
    deliveries = emitter.burst(watched.remote_id, 500)
    assert {d.status for d in deliveries} == {200}
    assert task_queue.size() == 1  # 500 notifications, one queued sync: the database's claim
    ran = task_queue.drain()
    assert ran.count("gcal_push.tasks.calendar_sync_task") == 1
    assert len(google.requests_for("events.list")) - lists <= 3
    booking.refresh_from_db()
    assert booking.status == BookingStatus.DECLINED
    assert booking.transitions.filter(to_status=BookingStatus.DECLINED).count() == 1
    assert len(google.requests_for("events.delete")) == 1


def _burst_in_thread(emitter: GooglePushEmitter, calendar_id: str, count: int) -> None:
    from django.db import connection

    try:
        emitter.burst(calendar_id, count)
    finally:
        connection.close()


@pytest.mark.postgres_only
def test_burst_coalesces_while_a_worker_runs_when_notifications_keep_coming(
    google: PushFakeGoogleCalendar, task_queue: TaskQueue, settings: Any
) -> None:
    # With the production debounce, a burst that arrives while a worker is running costs a
    # couple of listings, not one per notification.
    settings.GOOGLE_SYNC_DEBOUNCE_SECONDS = 1.0
    owner = owner_create(google)
    watched = watched_create(google, owner)[0]
    channel_create(calendar_id=watched.calendar.pk)
    booking = book(watched)
    task_queue.drain()
    booking.refresh_from_db()
    assert booking.google_event_id is not None
    google.attendee_respond(
        watched.remote_id, booking.google_event_id, email=BOOKEE, response_status="accepted"
    )
    lists = len(google.requests_for("events.list"))
    emitter = GooglePushEmitter(google, ClientTransport())
    with worker_running(task_queue) as watch:
        # Five bursts of 100 from five threads while the worker syncs (PostgreSQL: real
        # concurrent transactions).
        threads = [
            threading.Thread(target=_burst_in_thread, args=(emitter, watched.remote_id, 100))
            for _ in range(5)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        burst_seconds = time.monotonic() - started
        settle(google, watch, task_queue)
    assert {d.status for d in emitter.deliveries} == {200}
    assert len(emitter.deliveries) == 500
    # One listing per debounce period while the burst lasts, and one after it: never one per
    # notification.
    listings = len(google.requests_for("events.list")) - lists
    assert 1 <= listings <= 2 + math.ceil(burst_seconds / settings.GOOGLE_SYNC_DEBOUNCE_SECONDS)
    assert listings <= 10
    booking.refresh_from_db()
    assert booking.attendee_partstat == "ACCEPTED"
    assert booking.transitions.filter(source=TransitionSource.GOOGLE_PUSH).count() == 1


def test_duplicated_reordered_and_dropped_notifications_lose_nothing_when_reconciled(
    google: PushFakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    owner = owner_create(google)
    watched = watched_create(google, owner)[0]
    channel_create(calendar_id=watched.calendar.pk)
    first = book(watched, email="first@example.net", hour=9)
    second = book(watched, email="second@example.net", hour=11)
    task_queue.drain()
    first.refresh_from_db()
    second.refresh_from_db()
    emitter = GooglePushEmitter(google, ClientTransport(), immediate=False).start()
    google.attendee_respond(
        watched.remote_id,
        first.google_event_id or "",
        email="first@example.net",
        response_status="declined",
    )
    google.attendee_respond(
        watched.remote_id,
        second.google_event_id or "",
        email="second@example.net",
        response_status="accepted",
    )
    emitter.stop()
    # Both notifications dropped: nothing happens until the periodic reconciliation.
    assert emitter.flush(drop=2) == []
    assert task_queue.drain() == []
    first.refresh_from_db()
    assert first.status == BookingStatus.REQUESTED
    assert calendars_reconcile() == 1
    task_queue.drain()
    # Duplicated and reordered notifications of changes already applied apply nothing again.
    [channel] = google.live_channels(watched.remote_id)
    emitter.held = [emitter.notification(channel, "exists") for _ in range(3)]
    deliveries = emitter.flush(duplicate=4, reorder=True)
    assert len(deliveries) == 15 and {d.status for d in deliveries} == {200}
    assert task_queue.drain() == ["gcal_push.tasks.calendar_sync_task"]
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (BookingStatus.DECLINED, BookingStatus.REQUESTED)
    assert second.attendee_partstat == "ACCEPTED"
    assert first.transitions.filter(source=TransitionSource.GOOGLE_PUSH).count() == 1
    assert second.transitions.filter(source=TransitionSource.GOOGLE_PUSH).count() == 1
    assert len(google.requests_for("events.delete")) == 1


def test_sync_state_shows_success_when_synced(
    google: PushFakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched = watched_create(google, owner_create(google))[0]
    channel_create(calendar_id=watched.calendar.pk)
    assert task_queue.drain() == ["gcal_push.tasks.calendar_sync_task"]
    state = GoogleCalendarSyncState.objects.get(pk=watched.calendar.pk)
    assert state.sync_token and state.last_full_sync_at and state.last_synced_at
    assert (state.dirty, state.sync_pending, state.failure_count) == (False, False, 0)
