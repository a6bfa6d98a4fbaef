"""RSVP for a booking kept on a Google calendar (``GOOGLE_INVITE_ENABLED`` off: Convoke's own
invitation carried the links). There is no CalDAV copy: the answer goes to the booking."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from pytest_django import Settings as SettingsWrapper

from calendars.models import BookingStatus
from tests.factories import BookingFactory, GoogleCalendarFactory
from tests.invitations.rsvp_support import rsvp_path, rsvp_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def google_booking(settings: SettingsWrapper) -> Any:
    # Nothing points at a CalDAV server: any attempt to reach one would fail the answer.
    settings.CALDAV_URL = ""
    settings.CALDAV_CALENDAR_HOME_TEMPLATE = ""
    start = (timezone.now() + dt.timedelta(days=3)).replace(microsecond=0)
    return BookingFactory(
        calendar=GoogleCalendarFactory(),
        title="Intro call with Bob",
        attendee_email="bob@example.net",
        start=start,
        end=start + dt.timedelta(minutes=30),
    )


def _token(booking: Any) -> str:
    return rsvp_token(
        uid=booking.ical_uid, attendee=booking.attendee_email, organizer=booking.organizer.email
    )


def test_get_shows_the_booking_and_changes_nothing_when_it_lives_on_google(
    client: Client, google_booking: Any
) -> None:
    response = client.get(rsvp_path(_token(google_booking), "declined"))
    assert response.status_code == 200
    assert "Intro call with Bob" in response.content.decode()
    google_booking.refresh_from_db()
    assert google_booking.status == BookingStatus.REQUESTED
    assert not google_booking.transitions.exists()


def test_post_declines_the_booking_once_when_it_lives_on_google(
    client: Client, google_booking: Any, django_capture_on_commit_callbacks: Any
) -> None:
    token = _token(google_booking)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post("/rsvp/", {"token": token, "action": "declined"})
    assert response.status_code == 200
    google_booking.refresh_from_db()
    assert google_booking.status == BookingStatus.DECLINED
    assert [(t.from_status, t.to_status, t.source) for t in google_booking.transitions.all()] == [
        ("requested", "declined", "email_link")
    ]
    assert len(callbacks) == 1  # the provider sync that deletes the Google event
    # The booking is over: the link now says so instead of changing anything.
    again = client.post("/rsvp/", {"token": token, "action": "accepted"})
    assert again.status_code == 404
    assert google_booking.transitions.count() == 1


def test_post_records_acceptance_without_changing_status_when_it_lives_on_google(
    client: Client, google_booking: Any
) -> None:
    response = client.post("/rsvp/", {"token": _token(google_booking), "action": "accepted"})
    assert response.status_code == 200
    google_booking.refresh_from_db()
    assert google_booking.status == BookingStatus.REQUESTED
    assert google_booking.attendee_partstat == "ACCEPTED"
    page = client.get(rsvp_path(_token(google_booking), "accepted")).content.decode()
    assert "Intro call with Bob" in page


def test_someone_else_is_refused_when_the_booking_lives_on_google(
    client: Client, google_booking: Any
) -> None:
    token = rsvp_token(
        uid=google_booking.ical_uid,
        attendee="jimbob@example.net",
        organizer=google_booking.organizer.email,
    )
    response = client.post("/rsvp/", {"token": token, "action": "declined"})
    assert response.status_code == 403
    google_booking.refresh_from_db()
    assert google_booking.status == BookingStatus.REQUESTED
