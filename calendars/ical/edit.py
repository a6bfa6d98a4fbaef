"""Editing a stored calendar object: one attendee's answer, and the REPLY that tells it."""

from __future__ import annotations

import datetime as dt
from copy import deepcopy
from dataclasses import replace
from typing import Any

import icalendar

from calendars.ical.budgets import calendars_read
from calendars.ical.parse import (
    check_envelope,
    decode,
    describe_library_error,
    event_from_component,
    first_value,
    moment_of,
)
from calendars.ical.rules import first_at_or_after, recurrence_set, render_work
from calendars.ical.types import (
    LIBRARY_ERRORS,
    UTC,
    Event,
    EventStatus,
    ICalendarError,
    Method,
    NotAnAttendee,
    OccurrenceNotFound,
    PartStat,
    clean_address,
)
from calendars.ical.zones import ZoneContext, tzids_of

# --- Attendee answers (RSVP) -------------------------------------------------------------------
# The organizer's stored copy of an event gets one attendee's PARTSTAT (RFC 5545 section
# 3.2.12), and the iTIP REPLY that tells the organizer (RFC 5546 section 3.2.3) is built from
# it. Occurrences are named by :func:`recurrence_key`, the form RSVP tokens carry.


def recurrence_key(value: dt.date | dt.datetime) -> str:
    """A RECURRENCE-ID as RSVP tokens carry it: ``20261215`` for a date, ``20261215T140000``
    when floating, else the instant in UTC (``20261215T130000Z``)."""
    if not isinstance(value, dt.datetime):
        return value.strftime("%Y%m%d")
    if value.tzinfo is None:
        return value.strftime("%Y%m%dT%H%M%S")
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _key_moment(key: str) -> dt.date | dt.datetime:
    """The inverse of :func:`recurrence_key`; raises :class:`OccurrenceNotFound`."""
    try:
        if len(key) == 8:
            return dt.datetime.strptime(key, "%Y%m%d").date()
        if key.endswith("Z"):
            return dt.datetime.strptime(key, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        return dt.datetime.strptime(key, "%Y%m%dT%H%M%S")
    except ValueError:
        raise OccurrenceNotFound(f"{key[:40]!r} is not a RECURRENCE-ID") from None


def _stored_calendar(data: bytes) -> tuple[Any, str]:
    text = decode(bytes(data))
    check_envelope(text)
    try:
        calendars = [c for c in calendars_read(text) if c.name == "VCALENDAR"]
    except ICalendarError:
        raise
    except LIBRARY_ERRORS as exc:
        raise ICalendarError(describe_library_error(exc, text)) from exc
    if len(calendars) != 1:
        raise ICalendarError("the stored data does not hold exactly one VCALENDAR")
    calendar = calendars[0]
    if not calendar.walk("VEVENT"):
        raise ICalendarError("no VEVENT component")
    return calendar, text


def _component_key(component: Any, context: ZoneContext) -> str | None:
    prop = first_value(component, "RECURRENCE-ID")
    if prop is None:
        return None
    return recurrence_key(moment_of(prop, context))


def _attendee_props(component: Any, address: str) -> list[Any]:
    """The ATTENDEE properties of exactly this address (whole, case-insensitive comparison)."""
    wanted = clean_address(address)
    props = component.get("ATTENDEE")
    if props is None:
        return []
    return [
        p for p in (props if isinstance(props, list) else [props]) if clean_address(p) == wanted
    ]


def _is_occurrence(
    master: Any, moment: dt.date | dt.datetime, context: ZoneContext, text: str
) -> bool:
    """Whether ``moment`` is an occurrence of the master's recurrence set (RRULE, RDATE, minus
    EXDATE; RFC 5545 section 3.8.5), evaluated under the rendering budget (rules.py). A rule
    that cannot be evaluated, or only at a cost beyond the budget, does not refuse."""
    event = event_from_component(master, context, text)
    start = event.start
    if start is None or not event.recurring:
        return False
    zone = start.tzinfo if isinstance(start, dt.datetime) else None

    def placed(value: dt.date | dt.datetime) -> dt.datetime:
        if not isinstance(value, dt.datetime):
            return dt.datetime.combine(value, dt.time.min)
        if zone is None:
            return value.replace(tzinfo=None)
        return value.astimezone(zone) if value.tzinfo is not None else value.replace(tzinfo=zone)

    wanted = placed(moment)
    try:
        # A floating or all-day start compares wall clocks: UNTIL is read without zone.
        rules = recurrence_set(
            rule=event.rrule.text if event.rrule is not None else None,
            start=placed(start),
            rdates=[placed(extra) for extra in event.rdates],
            exdates=[placed(removed) for removed in event.exdates],
            work=render_work(),
            ignoretz=zone is None,
        )
        found = first_at_or_after(rules, wanted)
    except (ICalendarError, ValueError, TypeError, OverflowError):
        return True
    return found is not None and found == wanted


def _occurrence_value(start_prop: Any, moment: dt.date | dt.datetime, context: ZoneContext) -> Any:
    """``moment`` written like the master's DTSTART (same value type and TZID)."""
    if not isinstance(moment, dt.datetime):
        return icalendar.vDDDTypes(moment)
    tzid = start_prop.params.get("TZID")
    if tzid is not None:
        zone = context.zone_for(str(tzid))
        wall = moment.astimezone(zone) if (zone is not None and moment.tzinfo) else moment
        value = icalendar.vDDDTypes(wall.replace(tzinfo=None))
        value.params["TZID"] = str(tzid)
        return value
    if moment.tzinfo is not None:
        return icalendar.vDDDTypes(moment.astimezone(UTC))
    return icalendar.vDDDTypes(moment)


def _override_from_master(master: Any, key: str, context: ZoneContext, text: str) -> Any:
    """A new override (RFC 5545 section 3.8.4.4) of the master for the occurrence ``key``."""
    moment = _key_moment(key)
    start_prop = first_value(master, "DTSTART")
    if start_prop is None:
        raise OccurrenceNotFound("the event has no DTSTART, so it has no occurrences")
    start_value = moment_of(start_prop, context)
    if isinstance(moment, dt.datetime) != isinstance(start_value, dt.datetime):
        raise OccurrenceNotFound(f"{key!r} is not an occurrence of this event")
    if (
        isinstance(moment, dt.datetime)
        and isinstance(start_value, dt.datetime)
        and (moment.tzinfo is None) != (start_value.tzinfo is None)
    ):
        raise OccurrenceNotFound(f"{key!r} is not an occurrence of this event")
    if not _is_occurrence(master, moment, context, text):
        raise OccurrenceNotFound(f"{key!r} is not an occurrence of this event")
    event = event_from_component(master, context, text)
    duration = (
        event.end - event.start  # type: ignore[operator]
        if event.start is not None and event.end is not None
        else dt.timedelta(0)
    )
    override = icalendar.Event()
    for name, value in master.items():
        if name.upper() in ("RRULE", "RDATE", "EXDATE", "DTSTART", "DTEND", "DURATION"):
            continue
        override[name] = deepcopy(value)
    override["RECURRENCE-ID"] = _occurrence_value(start_prop, moment, context)
    override["DTSTART"] = _occurrence_value(start_prop, moment, context)
    if first_value(master, "DTEND") is not None:
        override["DTEND"] = _occurrence_value(start_prop, moment + duration, context)
    elif first_value(master, "DURATION") is not None:
        override["DURATION"] = deepcopy(first_value(master, "DURATION"))
    for sub in master.subcomponents:
        override.add_component(deepcopy(sub))
    return override


def attendee_partstat_set(
    data: bytes, *, attendee: str, partstat: PartStat | str, recurrence_id: str | None
) -> bytes:
    """The stored calendar object ``data`` with ``attendee``'s PARTSTAT set, fit to PUT back.

    ``recurrence_id`` (a :func:`recurrence_key`) answers for that occurrence only: its
    override gets the PARTSTAT, and is created from the master when the object has none
    (RFC 5545 section 3.8.4.4); other occurrences keep theirs. Without it the answer is for
    the whole event: the master, and every override that lists the attendee. Only the
    ATTENDEE whose whole address equals ``attendee`` (case-insensitively) changes. METHOD
    is removed (a stored object must not carry one, RFC 4791 section 4.1); nothing else
    changes. Raises :class:`NotAnAttendee`, :class:`OccurrenceNotFound` or
    :class:`ICalendarError`.
    """
    value = str(partstat).strip().upper()
    if not value or any(c in value for c in ';:,"\r\n'):
        raise ICalendarError("PARTSTAT must be a single token such as ACCEPTED")
    calendar, text = _stored_calendar(data)
    if "METHOD" in calendar:
        del calendar["METHOD"]
    context = ZoneContext(calendar, text)
    events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    master = next((c for c in events if first_value(c, "RECURRENCE-ID") is None), None)
    overrides = [c for c in events if first_value(c, "RECURRENCE-ID") is not None]
    if recurrence_id is None:
        targets = [master] if master is not None else []
        targets += [c for c in overrides if _attendee_props(c, attendee)]
        if master is not None and not _attendee_props(master, attendee):
            raise NotAnAttendee("the address is not an attendee of this event")
        if not targets:
            raise NotAnAttendee("the address is not an attendee of this event")
    else:
        target = next((c for c in overrides if _component_key(c, context) == recurrence_id), None)
        if target is None:
            if master is None:
                raise OccurrenceNotFound("the event has no such occurrence")
            target = _override_from_master(master, recurrence_id, context, text)
            calendar.add_component(target)
        if (
            first_value(target, "STATUS") is not None
            and str(first_value(target, "STATUS")).upper() == EventStatus.CANCELLED
        ):
            raise OccurrenceNotFound("that occurrence is cancelled")
        if not _attendee_props(target, attendee):
            raise NotAnAttendee("the address is not an attendee of this occurrence")
        targets = [target]
    for component in targets:
        for prop in _attendee_props(component, attendee):
            prop.params["PARTSTAT"] = value
    return bytes(calendar.to_ical())


def reply_build(
    data: bytes,
    *,
    attendee: str,
    recurrence_id: str | None,
    dtstamp: dt.datetime | None = None,
) -> bytes:
    """The iTIP REPLY (RFC 5546 section 3.2.3) of ``attendee`` about the stored event ``data``.

    One VEVENT: the master (the whole event) or the override of ``recurrence_id`` (with its
    RECURRENCE-ID), with UID, SEQUENCE, ORGANIZER, the times, SUMMARY and LOCATION, a fresh
    DTSTAMP, and only this attendee, with PARTSTAT and CN: the stored line's other
    parameters (RSVP, ROLE, and the server's SCHEDULE-STATUS, SCHEDULE-AGENT or
    SCHEDULE-FORCE-SEND, which RFC 6638 section 7.3 forbids in a message a client sends) stay
    behind, as sabre leaves them out of its own REPLY. The ORGANIZER keeps only its CN. The
    VTIMEZONEs its times use come along. Raises :class:`NotAnAttendee`,
    :class:`OccurrenceNotFound` or :class:`ICalendarError`.
    """
    calendar, text = _stored_calendar(data)
    context = ZoneContext(calendar, text)
    events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    if recurrence_id is None:
        source = next((c for c in events if first_value(c, "RECURRENCE-ID") is None), None)
    else:
        source = next((c for c in events if _component_key(c, context) == recurrence_id), None)
    if source is None:
        raise OccurrenceNotFound("the event has no such occurrence")
    answering = _attendee_props(source, attendee)
    if not answering:
        raise NotAnAttendee("the address is not an attendee of this event")
    reply = icalendar.Calendar()
    reply.add("PRODID", "-//Convoke//Convoke//EN")
    reply.add("VERSION", "2.0")
    reply.add("METHOD", Method.REPLY.value)
    event = icalendar.Event()
    kept = (
        *("UID", "SEQUENCE", "RECURRENCE-ID", "DTSTART", "DTEND", "DURATION", "SUMMARY"),
        *("LOCATION", "RRULE", "RDATE", "EXDATE", "STATUS"),
    )
    for name in kept:
        if name in source:
            event[name] = deepcopy(source[name])
    organizer = first_value(source, "ORGANIZER")
    if organizer is not None:
        event["ORGANIZER"] = _address_only(organizer, keep=("CN",))
    event.add("DTSTAMP", (dtstamp or dt.datetime.now(UTC)).astimezone(UTC))
    event["ATTENDEE"] = _address_only(answering[0], keep=("PARTSTAT", "CN"))
    tzids = set(tzids_of(event))
    for component in calendar.subcomponents:
        if component.name == "VTIMEZONE" and str(component.get("TZID", "")) in tzids:
            reply.add_component(deepcopy(component))
    reply.add_component(event)
    return bytes(reply.to_ical())


def _address_only(prop: Any, *, keep: tuple[str, ...]) -> icalendar.vCalAddress:
    """A calendar address with only the parameters named in ``keep``."""
    address = icalendar.vCalAddress(str(prop))
    for name in keep:
        value = prop.params.get(name)
        if value:
            address.params[name] = value
    return address


def occurrence_event(data: bytes, *, recurrence_id: str | None) -> Event:
    """The event an answer is about, read from a stored calendar object.

    Without ``recurrence_id``: the master (or the first VEVENT when the object holds only
    overrides). With it: that occurrence's override, or else the master placed at that
    occurrence (``recurrence_id``, ``start`` and ``end`` set, no recurrence rule), in the
    master's zone. Raises :class:`OccurrenceNotFound` when the series has no such
    occurrence (an EXDATE removed it, or it never was one) and :class:`ICalendarError`.
    """
    calendar, text = _stored_calendar(data)
    context = ZoneContext(calendar, text)
    components = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    master = next((c for c in components if first_value(c, "RECURRENCE-ID") is None), None)
    if recurrence_id is None:
        return event_from_component(master or components[0], context, text)
    for component in components:
        if _component_key(component, context) == recurrence_id:
            return event_from_component(component, context, text)
    if master is None:
        raise OccurrenceNotFound("the event has no such occurrence")
    moment = _key_moment(recurrence_id)
    event = event_from_component(master, context, text)
    start = event.start
    if start is None or isinstance(moment, dt.datetime) != isinstance(start, dt.datetime):
        raise OccurrenceNotFound("the event has no such occurrence")
    if isinstance(moment, dt.datetime) and isinstance(start, dt.datetime):
        if (moment.tzinfo is None) != (start.tzinfo is None):
            raise OccurrenceNotFound("the event has no such occurrence")
        if moment.tzinfo is not None and start.tzinfo is not None:
            moment = moment.astimezone(start.tzinfo)
    if not _is_occurrence(master, moment, context, text):
        raise OccurrenceNotFound("the event has no such occurrence")
    duration = (
        event.end - start  # type: ignore[operator]
        if event.end is not None
        else dt.timedelta(0)
    )

    return replace(
        event,
        recurrence_id=moment,
        start=moment,
        end=moment + duration,
        rrule=None,
        rdates=(),
        exdates=(),
    )
