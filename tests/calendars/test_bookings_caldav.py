"""Bookings on a CalDAV calendar (docs/design.md 1.3), against a real Radicale server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail

from calendars import services
from calendars.ical import parse_itip
from calendars.models import Booking, BookingStatus, PublishState, Schedule, TransitionSource
from tests.calendars.test_bookings_google import calendar_part, slot, transitions
from tests.factories import CalendarFactory, ScheduleFactory, UserFactory
from tests.fakes.radicale import RadicaleServer
from tests.fakes.sabre import SabreLike
from tests.fixtures import Commit

pytestmark = pytest.mark.django_db

BOOKEE = "bookee@example.net"


@pytest.fixture
def schedule(radicale: RadicaleServer) -> Schedule:
    owner = UserFactory(email="organizer@example.org", full_name="Olive Organizer")
    calendar = CalendarFactory(owner=owner, remote_id=radicale.calendar_create())
    return ScheduleFactory(owner=owner, calendar=calendar, slug="caldav-meet", slot_minutes=45)


def request_booking(commit: Commit, schedule: Schedule, **extra: Any) -> Booking:
    with commit():
        booking = services.booking_request(
            schedule_id=schedule.pk,
            attendee_name="Bob Bookee",
            attendee_email=BOOKEE,
            start=extra.pop("start", slot()),
            **extra,
        )
    booking.refresh_from_db()
    return booking


def stored(radicale: RadicaleServer, schedule: Schedule) -> list[bytes]:
    return list(radicale.objects(schedule.calendar.remote_id).values())


def test_request_puts_event_with_organizer_and_attendee_when_calendar_is_caldav(
    radicale: RadicaleServer, schedule: Schedule, commit: Commit
) -> None:
    booking = request_booking(commit, schedule)
    assert (booking.status, booking.publish_state) == (
        BookingStatus.REQUESTED,
        PublishState.PUBLISHED,
    )
    assert transitions(booking) == [("", "requested", "api")]
    [body] = stored(radicale, schedule)
    assert b"METHOD" not in body
    event = parse_itip(body).primary
    assert (event.uid, event.status, event.sequence) == (booking.ical_uid, "TENTATIVE", 0)
    assert event.organizer is not None and event.organizer.address == "organizer@example.org"
    attendee = event.attendee(BOOKEE)
    assert attendee is not None and attendee.partstat == "NEEDS-ACTION" and attendee.rsvp
    assert event.end - event.start == dt.timedelta(minutes=45)  # type: ignore[operator]
    # Radicale does not schedule (no calendar-auto-schedule in its DAV header): Convoke
    # mails the subscriber, and the bookee its own REQUEST.
    assert sorted(m.to for m in mail.outbox) == [[BOOKEE], ["organizer@example.org"]]


def test_confirm_bumps_sequence_and_sets_status_confirmed_when_calendar_is_caldav(
    radicale: RadicaleServer, schedule: Schedule, commit: Commit
) -> None:
    booking = request_booking(commit, schedule)
    with commit():
        services.booking_confirm(booking_id=booking.pk, source=TransitionSource.EMAIL_LINK)
    [body] = stored(radicale, schedule)
    event = parse_itip(body).primary
    assert (event.status, event.sequence) == ("CONFIRMED", 1)
    booking.refresh_from_db()
    assert (booking.status, booking.sequence, booking.publish_state) == ("booked", 1, "published")


@pytest.mark.parametrize("action", [services.booking_deny, services.booking_cancel])
def test_deny_or_cancel_deletes_event_when_calendar_is_caldav(
    radicale: RadicaleServer, schedule: Schedule, commit: Commit, action: Callable[..., Any]
) -> None:
    booking = request_booking(commit, schedule)
    with commit():
        services.booking_confirm(booking_id=booking.pk, source=TransitionSource.API)
    with commit():
        action(booking_id=booking.pk, source=TransitionSource.API)
    assert stored(radicale, schedule) == []
    booking.refresh_from_db()
    assert booking.publish_state == PublishState.PUBLISHED
    assert booking.status in (BookingStatus.DECLINED, BookingStatus.CANCELLED)


def test_transition_applied_twice_writes_once_when_calendar_is_caldav(
    radicale: RadicaleServer, schedule: Schedule, commit: Commit
) -> None:
    booking = request_booking(commit, schedule)
    with commit():
        services.booking_confirm(booking_id=booking.pk, source=TransitionSource.API)
    first = stored(radicale, schedule)
    with commit():
        again = services.booking_confirm(booking_id=booking.pk, source=TransitionSource.API)
    # A second PUT would carry a new DTSTAMP: the stored bytes would differ.
    assert not again.changed and stored(radicale, schedule) == first


def test_auto_confirmed_booking_is_stored_confirmed_when_schedule_auto_confirms(
    radicale: RadicaleServer, schedule: Schedule, commit: Commit
) -> None:
    Schedule.objects.filter(pk=schedule.pk).update(auto_confirm=True)
    booking = request_booking(commit, schedule)
    assert booking.status == BookingStatus.BOOKED
    [body] = stored(radicale, schedule)
    assert parse_itip(body).primary.status == "CONFIRMED"


def test_convoke_sends_request_and_cancel_when_server_does_not_schedule(
    radicale: RadicaleServer,
    schedule: Schedule,
    commit: Commit,
) -> None:
    booking = request_booking(commit, schedule)
    with commit():
        services.booking_cancel(booking_id=booking.pk, source=TransitionSource.API)
    to_bookee = [m for m in mail.outbox if m.to == [BOOKEE]]
    assert len(to_bookee) == 2
    request, cancel = (calendar_part(m) for m in to_bookee)
    assert "METHOD:REQUEST" in request and "SEQUENCE:0" in request
    assert "METHOD:CANCEL" in cancel and "SEQUENCE:1" in cancel
    assert stored(radicale, schedule) == []


def test_convoke_sends_no_request_when_the_server_announces_scheduling(
    sabre: SabreLike, commit: Commit
) -> None:
    # A server that schedules (sabre/dav: calendar-auto-schedule) sends the REQUEST of the
    # organizer's write itself, through its callback; Convoke mails only the subscriber.
    owner = UserFactory(email=sabre.user_add("organizer@example.org"), full_name="Olive")
    [calendar_url] = sabre.calendar_urls("organizer@example.org")
    calendar = CalendarFactory(owner=owner, remote_id=calendar_url)
    schedule = ScheduleFactory(owner=owner, calendar=calendar, slug="sabre-meet", slot_minutes=45)

    booking = request_booking(commit, schedule)

    assert booking.publish_state == PublishState.PUBLISHED
    assert [m.to for m in mail.outbox] == [["organizer@example.org"]]
    [request] = sabre.callbacks_take()
    assert (request.method, request.recipient) == ("REQUEST", BOOKEE)


def test_wrong_credentials_mark_sync_failed_when_server_refuses(
    radicale: RadicaleServer,
    schedule: Schedule,
    commit: Commit,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.CALDAV_PASSWORD = "not-the-password"
    booking = request_booking(commit, schedule)
    assert booking.publish_state == PublishState.FAILED
    assert "caldav_auth" in booking.publish_error
    assert stored(radicale, schedule) == []


def test_unreachable_server_is_retried_then_failed_when_nothing_answers(
    radicale: RadicaleServer,
    schedule: Schedule,
    commit: Commit,
    settings,
    unused_port: int,  # type: ignore[no-untyped-def]
) -> None:
    settings.BOOKING_PUBLISH_MAX_RETRIES = 1
    settings.CALDAV_TIMEOUT_SECONDS = 2.0
    dead = f"http://127.0.0.1:{unused_port}/organizer/cal/"
    type(schedule.calendar).objects.filter(pk=schedule.calendar_id).update(remote_id=dead)
    settings.CALDAV_URL = f"http://127.0.0.1:{unused_port}/"
    booking = request_booking(commit, schedule)
    assert booking.publish_state == PublishState.FAILED
    assert booking.publish_error.startswith("gave up: caldav_connection")


def test_api_key_and_forwarded_user_are_sent_when_outbound_key_is_set(settings) -> None:  # type: ignore[no-untyped-def]
    from calendars.providers import caldav

    settings.CALDAV_URL = "http://127.0.0.1:9/"
    settings.CALDAV_OUTBOUND_API_KEY = "outbound-key-for-tests-0123456789"
    client = caldav.client_for(user_email="organizer@example.org")
    assert client.headers[caldav.API_KEY_HEADER] == "outbound-key-for-tests-0123456789"
    assert client.headers[caldav.USER_HEADER] == "organizer@example.org"
    assert client.auth is None


def test_unexpected_error_marks_sync_failed_without_personal_data_when_sync_crashes(
    radicale: RadicaleServer, schedule: Schedule
) -> None:
    from calendars.ical import ICalendarError
    from calendars.tasks import booking_publish_task
    from tests.factories import BookingFactory

    # A zone the validators would refuse, written past them: building the event fails.
    booking = BookingFactory(
        calendar=schedule.calendar, schedule=schedule, time_zone="Mars/Olympus"
    )
    with pytest.raises(ICalendarError):
        booking_publish_task.delay(booking.pk).get()
    booking.refresh_from_db()
    assert booking.publish_state == PublishState.FAILED
    assert booking.publish_error.startswith("internal error ICalendarError at booking.py:")
    assert "@" not in booking.publish_error
    assert booking.publish_lease_until is None
