"""A REPLY about one of our bookings applies the bookee's answer (docs/design.md 1.3)."""

from __future__ import annotations

import pytest
from django.test import Client

from calendars.models import BookingStatus, BookingTransition, TransitionSource
from tests.factories import BookingFactory
from tests.scheduling.itip import itip_body, post_callback

pytestmark = pytest.mark.django_db


def _reply(client: Client, booking: object, partstat: str, *, dtstamp: str = "20261120T100000Z"):
    organizer = booking.organizer.email  # type: ignore[attr-defined]
    attendee = booking.attendee_email  # type: ignore[attr-defined]
    body = itip_body(
        method="REPLY",
        uid=booking.ical_uid,  # type: ignore[attr-defined]
        organizer=organizer,
        attendees=[(attendee, partstat)],
        dtstamp=dtstamp,
    )
    return post_callback(client, body, method="REPLY", sender=attendee, recipient=organizer)


def test_reply_declines_the_booking_when_bookee_declines(client: Client) -> None:
    booking = BookingFactory(status=BookingStatus.BOOKED)

    response = _reply(client, booking, "DECLINED")

    assert response.status_code == 202
    booking.refresh_from_db()
    assert booking.status == BookingStatus.DECLINED
    transition = BookingTransition.objects.get(booking=booking)
    assert (transition.from_status, transition.to_status) == ("booked", "declined")
    assert transition.source == TransitionSource.CALDAV_REPLY


@pytest.mark.parametrize("partstat", ["ACCEPTED", "TENTATIVE"])
def test_reply_records_the_answer_without_status_change_when_bookee_accepts(
    client: Client, partstat: str
) -> None:
    booking = BookingFactory(status=BookingStatus.REQUESTED)

    response = _reply(client, booking, partstat)

    assert response.status_code == 202
    booking.refresh_from_db()
    assert booking.status == BookingStatus.REQUESTED
    assert booking.attendee_partstat == partstat
    transition = BookingTransition.objects.get(booking=booking)
    assert transition.to_status == BookingStatus.REQUESTED
    assert transition.source == TransitionSource.CALDAV_REPLY
    assert transition.detail == {"partstat": partstat}


def test_reply_changes_nothing_more_when_the_same_answer_comes_again(client: Client) -> None:
    booking = BookingFactory(status=BookingStatus.BOOKED)

    _reply(client, booking, "DECLINED")
    _reply(client, booking, "DECLINED", dtstamp="20261120T110000Z")

    assert BookingTransition.objects.filter(booking=booking).count() == 1


def test_reply_leaves_booking_alone_when_uid_is_not_a_booking(client: Client) -> None:
    booking = BookingFactory(status=BookingStatus.BOOKED, ical_uid="booking-1@convoke")
    body = itip_body(
        method="REPLY",
        uid="someone-elses-event@dav.example.org",
        organizer=booking.organizer.email,
        attendees=[(booking.attendee_email, "DECLINED")],
    )

    response = post_callback(
        client,
        body,
        method="REPLY",
        sender=booking.attendee_email,
        recipient=booking.organizer.email,
    )

    assert response.status_code == 202
    booking.refresh_from_db()
    assert booking.status == BookingStatus.BOOKED
    assert not BookingTransition.objects.exists()


def test_reply_leaves_booking_alone_when_it_comes_from_another_attendee(client: Client) -> None:
    booking = BookingFactory(status=BookingStatus.BOOKED)
    organizer = booking.organizer.email
    body = itip_body(
        method="REPLY",
        uid=booking.ical_uid,
        organizer=organizer,
        attendees=[("someone.else@example.net", "DECLINED")],
    )

    response = post_callback(
        client, body, method="REPLY", sender="someone.else@example.net", recipient=organizer
    )

    assert response.status_code == 202
    booking.refresh_from_db()
    assert booking.status == BookingStatus.BOOKED


def test_request_with_a_booking_uid_does_not_touch_the_booking(client: Client) -> None:
    booking = BookingFactory(status=BookingStatus.REQUESTED)
    body = itip_body(
        uid=booking.ical_uid,
        organizer=booking.organizer.email,
        attendees=[(booking.attendee_email, "DECLINED")],
    )

    response = post_callback(
        client, body, sender=booking.organizer.email, recipient=booking.attendee_email
    )

    assert response.status_code == 202
    booking.refresh_from_db()
    assert booking.status == BookingStatus.REQUESTED
