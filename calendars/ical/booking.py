"""The calendar object of one booking (RFC 5545), and its iTIP form (RFC 5546)."""

from __future__ import annotations

import datetime as dt

import icalendar

from calendars.ical.types import UTC, ICalendarError, Method, PartStat
from calendars.ical.zones import generated_timezone, iana_name, zoneinfo_named

# --- Booking events ---------------------------------------------------------------------------
# Built for the bookings' publish (calendars.services.publish): the object PUT to a CalDAV
# calendar, and the iTIP message of Convoke's own invitation when the provider sends none.


def booking_event_build(
    *,
    uid: str,
    sequence: int,
    status: str,
    summary: str,
    description: str,
    start: dt.datetime,
    end: dt.datetime,
    time_zone: str,
    organizer_address: str,
    organizer_name: str,
    attendee_address: str,
    attendee_name: str,
    attendee_partstat: PartStat | str = PartStat.NEEDS_ACTION,
    method: Method | str | None = None,
    dtstamp: dt.datetime | None = None,
) -> bytes:
    """A VCALENDAR with one booking's VEVENT: ORGANIZER, one ATTENDEE, STATUS and SEQUENCE.

    ``status`` is ``TENTATIVE``, ``CONFIRMED`` or ``CANCELLED`` (RFC 5545 section 3.8.1.11).
    DTSTART and DTEND are written in ``time_zone`` (an IANA name) with its VTIMEZONE. Without
    ``method`` the object is fit to store on a CalDAV server, which refuses METHOD (RFC 4791
    section 4.1); with ``REQUEST`` or ``CANCEL`` it is an iTIP message (RFC 5546 section 3.2).
    Raises :class:`ICalendarError` for an unknown zone, naive times or an empty range.
    """
    name = iana_name(time_zone)
    if name is None:
        raise ICalendarError(f"unknown time zone {time_zone!r}")
    if start.tzinfo is None or end.tzinfo is None:
        raise ICalendarError("booking times must carry a time zone")
    if end <= start:
        raise ICalendarError("a booking must end after it starts")
    zone = zoneinfo_named(name)
    calendar = icalendar.Calendar()
    calendar.add("PRODID", "-//Convoke//Convoke//EN")
    calendar.add("VERSION", "2.0")
    if method:
        calendar.add("METHOD", Method(str(method).upper()).value)
    event = icalendar.Event()
    event.add("UID", uid)
    event.add("DTSTAMP", (dtstamp or dt.datetime.now(UTC)).astimezone(UTC))
    event.add("SEQUENCE", sequence)
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    if name == "UTC":
        local_start, local_end = start.astimezone(UTC), end.astimezone(UTC)
    event.add("DTSTART", local_start)
    event.add("DTEND", local_end)
    event.add("SUMMARY", summary)
    if description:
        event.add("DESCRIPTION", description)
    event.add("STATUS", status.upper())
    organizer = icalendar.vCalAddress(f"mailto:{organizer_address}")
    if organizer_name:
        organizer.params["CN"] = organizer_name
    event.add("ORGANIZER", organizer)
    attendee = icalendar.vCalAddress(f"mailto:{attendee_address}")
    if attendee_name:
        attendee.params["CN"] = attendee_name
    attendee.params["CUTYPE"] = "INDIVIDUAL"
    attendee.params["ROLE"] = "REQ-PARTICIPANT"
    attendee.params["PARTSTAT"] = str(attendee_partstat or PartStat.NEEDS_ACTION).upper()
    attendee.params["RSVP"] = "TRUE"
    event.add("ATTENDEE", attendee)
    if name != "UTC":
        # A span around the event, so that the VTIMEZONE carries its STANDARD/DAYLIGHT rules.
        first = local_start.date() - dt.timedelta(days=366)
        last = local_end.date() + dt.timedelta(days=366)
        calendar.add_component(generated_timezone(name, first, last))
    calendar.add_component(event)
    return bytes(calendar.to_ical())
