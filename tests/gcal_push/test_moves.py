"""Time changes made in Google (issue 16, finding 3): the booking follows the event's start
and end, recorded as a transition; the slot checks use the new time; the subscriber's views
show it; a move onto another active booking is kept, recorded and shown to operators."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time

import pytest
from django.test import Client
from django.urls import reverse

from calendars.admin_panel import operator_panel_counts
from calendars.booking_tokens import decision_token_make
from calendars.models import Booking, BookingStatus
from calendars.providers.google import event_from_api
from calendars.services import booking_request
from gcal_push.mapping import booking_event_apply
from gcal_push.services import channel_create
from gcal_push.sync import calendar_sync
from invitations.models import Delivery, DeliveryKind
from invitations.notices import notice_email_build, when_text
from tests.factories import UserFactory
from tests.fakes.google_push import ClientTransport, GooglePushEmitter
from tests.fixtures import PushFakeGoogleCalendar, TaskQueue, Watched, owner_create, watched_create
from tests.gcal_push.test_sync import BOOKEE, WRITES, slot

pytestmark = pytest.mark.django_db(transaction=True)


@dataclasses.dataclass
class Moves:
    google: PushFakeGoogleCalendar
    queue: TaskQueue
    emitter: GooglePushEmitter
    watched: Watched

    def book(self, start: dt.datetime, email: str = BOOKEE) -> Booking:
        booking = booking_request(
            schedule_id=self.watched.schedule.pk,
            attendee_name="Bob Bookee",
            attendee_email=email,
            start=start,
        )
        self.settle()
        booking.refresh_from_db()
        return booking

    def move(self, booking: Booking, start: dt.datetime, minutes: int = 30) -> None:
        assert booking.google_event_id
        self.google.event_move_as_owner(
            self.watched.remote_id,
            booking.google_event_id,
            start=start,
            end=start + dt.timedelta(minutes=minutes),
        )

    def settle(self) -> None:
        self.queue.drain(self.emitter)

    def request(self, start: dt.datetime) -> int:
        response = Client().post(
            f"/api/v1.0/schedules/{self.watched.schedule.slug}/bookings/",
            data=json.dumps(
                {"name": "Carol", "email": "carol@example.net", "start": start.isoformat()}
            ),
            content_type="application/json",
        )
        return response.status_code


@pytest.fixture
def moves(google: PushFakeGoogleCalendar, task_queue: TaskQueue) -> Moves:
    owner = owner_create(google)
    watched = watched_create(google, owner)[0]
    emitter = GooglePushEmitter(google, ClientTransport(), immediate=False).start()
    channel_create(calendar_id=watched.calendar.pk)
    yield Moves(google, task_queue, emitter, watched)
    emitter.stop()


def test_booking_follows_a_move_made_in_google_and_frees_the_old_slot_when_notified(
    moves: Moves,
) -> None:
    old, new = slot(hour=10), slot(hour=14)
    booking = moves.book(old)
    requests = len(moves.google.requests)

    moves.move(booking, new)
    moves.settle()

    booking.refresh_from_db()
    assert (booking.start, booking.end) == (new, new + dt.timedelta(minutes=30))
    assert (booking.status, booking.overlaps) == (BookingStatus.REQUESTED, False)
    moved = booking.transitions.last()
    assert moved is not None
    assert (moved.from_status, moved.to_status, moved.source) == (
        "requested",
        "requested",
        "google_push",
    )
    assert moved.detail == {
        "google_action": "move",
        "from": {"start": old.isoformat(), "end": (old + dt.timedelta(minutes=30)).isoformat()},
        "to": {"start": new.isoformat(), "end": (new + dt.timedelta(minutes=30)).isoformat()},
    }
    # Following Google writes nothing back to it.
    assert [r for r in moves.google.requests[requests:] if r.operation in WRITES] == []
    # The slot checks use the new time: the old slot is free, the new one taken.
    assert moves.request(new) == 409
    assert moves.request(old) == 201
    # The same listing again moves nothing.
    moves.google.sync_tokens_invalidate(moves.watched.remote_id)
    assert calendar_sync(calendar_id=moves.watched.calendar.pk).bookings_changed == 0
    assert booking.transitions.count() == 2


def test_subscribers_views_and_emails_show_the_new_time_when_moved_in_google(
    moves: Moves,
) -> None:
    old, new = slot(hour=10), slot(hour=15, days=3)
    booking = moves.book(old)
    moves.move(booking, new)
    moves.settle()

    owner = moves.watched.owner.user
    client = Client()
    client.force_login(owner)
    detail = client.get(f"/api/v1.0/bookings/{booking.pk}/").json()
    assert dt.datetime.fromisoformat(detail["start"]) == new

    def words(start: dt.datetime) -> str:
        end = start + dt.timedelta(minutes=30)
        return when_text(start=start, end=end, zone=owner.time_zone, language=owner.language)

    token = decision_token_make(booking_id=booking.pk, ical_uid=booking.ical_uid)
    page = Client().get("/bookings/decide/", {"token": token, "action": "confirm"})
    assert words(new) in page.content.decode() and words(old) not in page.content.decode()
    # The subscriber's notice, rendered from the booking when it leaves, shows it too.
    notice = Delivery.objects.get(booking=booking, kind=DeliveryKind.BOOKING_REQUEST)
    body = str(notice_email_build(delivery=notice).body)
    assert words(new) in body and words(old) not in body


def test_move_onto_another_booking_is_kept_recorded_and_shown_to_operators_when_it_overlaps(
    moves: Moves, caplog: pytest.LogCaptureFixture
) -> None:
    first = moves.book(slot(hour=10), email="first@example.net")
    second = moves.book(slot(hour=12), email="second@example.net")

    with caplog.at_level(logging.WARNING, logger="calendars.services.transitions"):
        moves.move(second, slot(hour=10) + dt.timedelta(minutes=15))
        moves.settle()

    second.refresh_from_db()
    first.refresh_from_db()
    assert second.start == slot(hour=10) + dt.timedelta(minutes=15)  # Google's time is kept
    assert (second.overlaps, first.overlaps) == (True, False)
    moved = second.transitions.last()
    assert moved is not None and moved.detail["overlaps"] == [first.pk]
    assert f"booking moved onto other bookings booking={second.pk} overlaps={first.pk}" in (
        caplog.text
    )
    assert "@" not in caplog.text
    # Operators see it: the index panel counts it, and the bookings list filters it.
    assert operator_panel_counts().bookings_overlapping == 1
    operator = Client()
    operator.force_login(UserFactory(is_staff=True, is_superuser=True))
    index = operator.get(reverse("admin:index")).content.decode()
    assert 'id="cv-bookings-overlapping">1<' in index
    listing = operator.get(reverse("admin:calendars_booking_changelist"), {"overlaps__exact": "1"})
    assert listing.status_code == 200
    assert listing.context["cl"].result_count == 1
    # Both slots stay taken for new requests.
    assert moves.request(slot(hour=10)) == 409
    assert moves.request(slot(hour=12)) == 201


def test_an_older_state_never_moves_a_booking_back_when_a_newer_one_was_applied(
    moves: Moves,
) -> None:
    booking = moves.book(slot(hour=10))
    assert booking.google_event_id
    # Two states of the event as Google returns them (``updated`` has millisecond precision).
    moves.move(booking, slot(hour=11))
    older = moves.google.event(moves.watched.remote_id, booking.google_event_id)
    time.sleep(0.005)
    moves.move(booking, slot(hour=12))
    newer = moves.google.event(moves.watched.remote_id, booking.google_event_id)
    assert older and newer and older["updated"] < newer["updated"]

    # A fresher read applied first (a decision's), then a listing that began before it.
    assert booking_event_apply(booking_id=booking.pk, event=event_from_api(newer))
    assert not booking_event_apply(booking_id=booking.pk, event=event_from_api(older))
    booking.refresh_from_db()
    assert booking.start == slot(hour=12)
    assert booking.google_etag == newer["etag"]
