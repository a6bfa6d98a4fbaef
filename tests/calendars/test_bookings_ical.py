"""booking_event_build: the VEVENT of a booking, read back with the project's own parser."""

from __future__ import annotations

import datetime as dt

import pytest

from calendars.ical import ICalendarError, Method, booking_event_build, parse_itip

START = dt.datetime(2031, 3, 4, 9, 0, tzinfo=dt.UTC)


def _build(**overrides: object) -> bytes:
    values: dict[str, object] = {
        "uid": "b-1@convoke",
        "sequence": 2,
        "status": "TENTATIVE",
        "summary": "Intro call; with, punctuation",
        "description": "Line one\nLine two",
        "start": START,
        "end": START + dt.timedelta(minutes=30),
        "time_zone": "Europe/Paris",
        "organizer_address": "owner@example.org",
        "organizer_name": "Owner, Inc",
        "attendee_address": "bookee@example.net",
        "attendee_name": "Bob Bookee",
        **overrides,
    }
    return booking_event_build(**values)  # type: ignore[arg-type]


def test_event_round_trips_with_organizer_attendee_and_zone_when_built() -> None:
    message = parse_itip(_build(method="REQUEST"))
    event = message.primary
    assert message.method is Method.REQUEST
    assert (event.uid, event.sequence, event.status) == ("b-1@convoke", 2, "TENTATIVE")
    assert event.start == START and event.time_zone == "Europe/Paris"
    assert event.summary == "Intro call; with, punctuation"
    assert event.description == "Line one\nLine two"
    assert event.organizer is not None and event.organizer.name == "Owner, Inc"
    attendee = event.attendee("bookee@example.net")
    assert attendee is not None and attendee.partstat == "NEEDS-ACTION" and attendee.rsvp


def test_stored_object_has_no_method_when_built_for_caldav() -> None:
    body = _build()
    assert b"METHOD" not in body
    assert parse_itip(body).method is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"time_zone": "Mars/Olympus"}, "unknown time zone"),
        ({"start": dt.datetime(2031, 3, 4, 9, 0)}, "time zone"),
        ({"end": START}, "end after"),
    ],
)
def test_build_refuses_bad_input_when_zone_or_range_is_wrong(
    overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ICalendarError, match=message):
        _build(**overrides)
