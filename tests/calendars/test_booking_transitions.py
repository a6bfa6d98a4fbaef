"""The booking state machine: legal moves, idempotence, recorded transitions, answers."""

from __future__ import annotations

from typing import Any

import pytest

from calendars.models import BookingStatus, TransitionSource
from calendars.services import (
    BookingTransitionError,
    booking_attendee_answer_record,
    booking_transition,
)
from tests.factories import BookingFactory

pytestmark = pytest.mark.django_db


def test_transition_changes_status_and_records_it_once_when_applied_twice() -> None:
    booking = BookingFactory()
    first = booking_transition(
        booking_id=booking.pk, to_status=BookingStatus.BOOKED, source=TransitionSource.API
    )
    second = booking_transition(
        booking_id=booking.pk, to_status=BookingStatus.BOOKED, source=TransitionSource.ADMIN
    )
    assert (first.changed, second.changed) == (True, False)
    booking.refresh_from_db()
    assert booking.status == BookingStatus.BOOKED
    assert [(t.from_status, t.to_status, t.source) for t in booking.transitions.all()] == [
        ("requested", "booked", "api")
    ]


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (BookingStatus.DECLINED, BookingStatus.BOOKED),
        (BookingStatus.CANCELLED, BookingStatus.REQUESTED),
        (BookingStatus.BOOKED, BookingStatus.REQUESTED),
    ],
)
def test_transition_is_refused_when_not_allowed(start: str, target: str) -> None:
    booking = BookingFactory(status=start)
    with pytest.raises(BookingTransitionError):
        booking_transition(booking_id=booking.pk, to_status=target, source="api")
    booking.refresh_from_db()
    assert booking.status == start
    assert not booking.transitions.exists()


def test_declined_answer_declines_the_booking_once(
    django_capture_on_commit_callbacks: Any,
) -> None:
    booking = BookingFactory(attendee_email="Bob@Example.net")
    with django_capture_on_commit_callbacks() as callbacks:
        assert booking_attendee_answer_record(
            booking_id=booking.pk,
            attendee_email="bob@example.net",
            partstat="declined",
            source=TransitionSource.CALDAV_REPLY,
        )
    # One provider sync is scheduled after the commit (it deletes the event).
    assert len(callbacks) == 1
    assert not booking_attendee_answer_record(
        booking_id=booking.pk,
        attendee_email="bob@example.net",
        partstat="declined",
        source=TransitionSource.CALDAV_REPLY,
    )
    assert not booking_attendee_answer_record(
        booking_id=booking.pk,
        attendee_email="bob@example.net",
        partstat="DECLINED",
        source=TransitionSource.CALDAV_REPLY,
    )
    booking.refresh_from_db()
    assert booking.status == BookingStatus.DECLINED
    assert booking.attendee_partstat == "DECLINED"
    assert [(t.from_status, t.to_status, t.source) for t in booking.transitions.all()] == [
        ("requested", "declined", "caldav_reply")
    ]


def test_accepted_answer_is_recorded_without_status_change() -> None:
    booking = BookingFactory(attendee_email="bob@example.net")
    assert booking_attendee_answer_record(
        booking_id=booking.pk,
        attendee_email="bob@example.net",
        partstat="ACCEPTED",
        source=TransitionSource.EMAIL_LINK,
    )
    booking.refresh_from_db()
    assert booking.status == BookingStatus.REQUESTED
    assert booking.attendee_partstat == "ACCEPTED"
    transition = booking.transitions.get()
    assert (transition.from_status, transition.to_status) == ("requested", "requested")
    assert transition.detail == {"partstat": "ACCEPTED"}


def test_answer_from_someone_else_changes_nothing() -> None:
    booking = BookingFactory(attendee_email="bob@example.net")
    assert not booking_attendee_answer_record(
        booking_id=booking.pk,
        attendee_email="jimbob@example.net",
        partstat="DECLINED",
        source=TransitionSource.CALDAV_REPLY,
    )
    booking.refresh_from_db()
    assert booking.status == BookingStatus.REQUESTED
    assert not booking.transitions.exists()


def test_unknown_partstat_is_refused() -> None:
    booking = BookingFactory()
    with pytest.raises(ValueError, match="PARTSTAT"):
        booking_attendee_answer_record(
            booking_id=booking.pk,
            attendee_email=booking.attendee_email,
            partstat="MAYBE",
            source=TransitionSource.CALDAV_REPLY,
        )
