"""Double booking: two bookees racing for one slot, and the database constraint behind the lock."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client

from calendars.models import Booking, BookingStatus
from tests.calendars.test_bookings_google import slot
from tests.factories import BookingFactory, CalendarFactory, ScheduleFactory
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fixtures import google_setup_create

THREAD_TIMEOUT_SECONDS = 30


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_one_of_two_concurrent_requests_wins_and_other_gets_409_when_slot_is_the_same(
    google_fake: FakeGoogleCalendar,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.GOOGLE_INVITE_ENABLED = True
    setup = google_setup_create(google_fake)
    schedule = ScheduleFactory(owner=setup.user, calendar=setup.calendar, slug="race")
    start = slot().isoformat()
    barrier = threading.Barrier(2, timeout=THREAD_TIMEOUT_SECONDS)
    results: list[tuple[int, Any]] = []
    errors: list[BaseException] = []

    def bookee(address: str) -> None:
        try:
            barrier.wait()
            response = Client().post(
                f"/api/v1.0/schedules/{schedule.slug}/bookings/",
                data=json.dumps({"name": "Racer", "email": address, "start": start}),
                content_type="application/json",
            )
            results.append((response.status_code, response.json()))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=bookee, args=(f"racer{n}@example.net",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_TIMEOUT_SECONDS)
    assert not errors, errors
    assert sorted(status for status, _ in results) == [201, 409]
    conflict = next(body for status, body in results if status == 409)
    assert conflict == {
        "detail": "This slot is no longer available. Please choose another time.",
        "code": "slot_unavailable",
    }
    assert Booking.objects.count() == 1
    assert len(google_fake.requests_for("events.insert")) == 1


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_exclusion_constraint_refuses_overlap_when_written_past_the_service(db: None) -> None:
    calendar = CalendarFactory()
    first = BookingFactory(calendar=calendar, start=slot())
    BookingFactory(calendar=calendar, start=first.end, organizer=calendar.owner)  # adjacent: fine
    with (
        pytest.raises(IntegrityError, match="booking_no_overlap_per_calendar"),
        transaction.atomic(),
    ):
        BookingFactory(calendar=calendar, start=first.start, organizer=calendar.owner)
    # A declined booking frees its slot.
    Booking.objects.filter(pk=first.pk).update(status=BookingStatus.DECLINED)
    BookingFactory(calendar=calendar, start=first.start, organizer=calendar.owner)
    # Another calendar may hold the same time.
    BookingFactory(start=first.start)
