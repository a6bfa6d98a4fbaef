"""Constraints of the shared schema, enforced by the database on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import IntegrityError, transaction

from calendars.models import BookingStatus, BookingTransition, Schedule, TransitionSource
from tests.factories import (
    BookingFactory,
    CalendarFactory,
    GoogleCalendarFactory,
    ScheduleFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def test_schedule_is_refused_when_calendar_belongs_to_another_owner() -> None:
    alice, bob = UserFactory(), UserFactory()
    bobs_calendar = CalendarFactory(owner=bob)
    with pytest.raises(IntegrityError), transaction.atomic():
        Schedule.objects.create(owner=alice, calendar=bobs_calendar, slug="alice")


def test_schedule_update_is_refused_when_new_calendar_belongs_to_another_owner() -> None:
    schedule = ScheduleFactory()
    stranger_calendar = CalendarFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Schedule.objects.filter(pk=schedule.pk).update(calendar=stranger_calendar)


def test_calendar_owner_change_is_refused_when_a_schedule_uses_it() -> None:
    schedule = ScheduleFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        type(schedule.calendar).objects.filter(pk=schedule.calendar_id).update(owner=UserFactory())


def test_schedule_is_accepted_when_calendar_belongs_to_owner() -> None:
    schedule = ScheduleFactory()
    assert schedule.calendar.owner_id == schedule.owner_id


def test_duplicate_schedule_slug_is_refused() -> None:
    ScheduleFactory(slug="taken")
    with pytest.raises(IntegrityError), transaction.atomic():
        ScheduleFactory(slug="taken")


def test_booking_is_refused_when_end_is_before_start() -> None:
    booking = BookingFactory.build(calendar=CalendarFactory())
    booking.end = booking.start - dt.timedelta(minutes=1)
    booking.organizer = booking.calendar.owner
    with pytest.raises(IntegrityError), transaction.atomic():
        booking.save()


def test_booking_is_refused_when_end_equals_start() -> None:
    booking = BookingFactory.build(calendar=CalendarFactory())
    booking.end = booking.start
    booking.organizer = booking.calendar.owner
    with pytest.raises(IntegrityError), transaction.atomic():
        booking.save()


def test_duplicate_ical_uid_is_refused() -> None:
    BookingFactory(ical_uid="same@convoke")
    with pytest.raises(IntegrityError), transaction.atomic():
        BookingFactory(ical_uid="same@convoke")


def test_google_event_id_is_unique_per_calendar_only() -> None:
    calendar = GoogleCalendarFactory()
    BookingFactory(calendar=calendar, google_event_id="abc123")
    BookingFactory(calendar=GoogleCalendarFactory(), google_event_id="abc123")
    with pytest.raises(IntegrityError), transaction.atomic():
        BookingFactory(calendar=calendar, google_event_id="abc123")


def test_bookings_without_google_event_id_do_not_collide() -> None:
    calendar = CalendarFactory()
    first = BookingFactory(calendar=calendar, google_event_id=None)
    # At another time: two active bookings may not overlap on one calendar (PostgreSQL).
    BookingFactory(calendar=calendar, google_event_id=None, start=first.end)


def test_user_email_is_unique_regardless_of_case() -> None:
    UserFactory(email="Someone@Example.org")
    with pytest.raises(IntegrityError), transaction.atomic():
        UserFactory(email="someone@example.org")


def test_unknown_booking_status_is_refused() -> None:
    booking = BookingFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        type(booking).objects.filter(pk=booking.pk).update(status="maybe")


def test_transition_records_from_to_and_source() -> None:
    booking = BookingFactory()
    BookingTransition.objects.create(
        booking=booking,
        from_status=BookingStatus.REQUESTED,
        to_status=BookingStatus.BOOKED,
        source=TransitionSource.API,
    )
    assert [str(t) for t in booking.transitions.all()] == ["requested → booked (api)"]
    with pytest.raises(IntegrityError), transaction.atomic():
        BookingTransition.objects.create(
            booking=booking, to_status=BookingStatus.BOOKED, source="carrier-pigeon"
        )
