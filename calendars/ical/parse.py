"""Reading an iTIP body (RFC 5546) into the dataclasses of :mod:`calendars.ical.types`.

Every problem with the input is reported as one :class:`ICalendarError` whose message a person
can act on ("line 12: DTSTART has an invalid date-time '2026130T'"); no other exception leaves
:func:`parse_itip`, whatever the bytes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from icalendar.prop import vBroken

from calendars.ical.budgets import calendars_read, event_years_check, year_check
from calendars.ical.people import attendees_read, conference_url, organizer_read, web_url
from calendars.ical.rules import rrule_read
from calendars.ical.types import (
    LIBRARY_ERRORS,
    UTC,
    Event,
    ICalendarError,
    ITipMessage,
    Method,
)
from calendars.ical.zones import ZoneContext, iana_name, tzids_of, zone_name

# Properties whose value we need to render an event truthfully; a broken one is an error.
_ESSENTIAL_PROPERTIES = (
    "DTSTART",
    "DTEND",
    "DURATION",
    "RECURRENCE-ID",
    "RRULE",
    "RDATE",
    "EXDATE",
)

_BOM = b"\xef\xbb\xbf"

# --- Parsing ----------------------------------------------------------------------------------


def parse_itip(body: bytes) -> ITipMessage:
    """Parse an iTIP body (RFC 5546) into an :class:`ITipMessage`.

    Accepts CRLF or LF line ends, folded lines and a UTF-8 byte-order mark. Raises
    :class:`ICalendarError` (and nothing else) when the body is not UTF-8, not iCalendar, holds
    more than one VCALENDAR, holds no VEVENT, or an essential property cannot be read.
    """
    if not isinstance(body, bytes | bytearray | memoryview):
        raise ICalendarError("not iCalendar data: expected bytes")
    raw = bytes(body)
    text = decode(raw)
    if "\n" not in text and "\r" in text:
        text = text.replace("\r", "\n")  # classic Mac OS line ends
    check_envelope(text)
    try:
        calendars = calendars_read(text, zone_known=_iana_zone_named)
    except ICalendarError:
        raise
    except LIBRARY_ERRORS as exc:
        raise ICalendarError(describe_library_error(exc, text)) from exc
    calendars = [c for c in calendars if c.name == "VCALENDAR"]
    if not calendars:
        if "END:VCALENDAR" not in text.upper():
            raise ICalendarError("the iCalendar data is incomplete: no END:VCALENDAR closes it")
        raise ICalendarError("the iCalendar data holds no complete VCALENDAR object")
    if len(calendars) > 1:
        raise ICalendarError(
            f"the body holds {len(calendars)} VCALENDAR objects; an iTIP message has exactly one"
        )
    calendar = calendars[0]
    try:
        return _message_from_calendar(calendar, raw, text)
    except ICalendarError:
        raise
    except LIBRARY_ERRORS as exc:
        raise ICalendarError(describe_library_error(exc, text)) from exc


def _iana_zone_named(tzid: str) -> bool:
    """A TZID the IANA database defines: its times are read with the IANA rules whatever the
    sender's VTIMEZONE says (zones.py), so that VTIMEZONE's rules need not be built."""
    return iana_name(tzid) is not None


def decode(raw: bytes) -> str:
    if raw.startswith(_BOM):
        raw = raw[len(_BOM) :]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ICalendarError(
            f"line {line}: byte 0x{raw[exc.start]:02X} is not valid UTF-8 "
            "(iCalendar data must be UTF-8, RFC 5545 section 3.1.4)"
        ) from exc
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ICalendarError(f"line {line}: NUL byte in the data; this is not iCalendar text")
    return text


def check_envelope(text: str) -> None:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if first.upper() != "BEGIN:VCALENDAR":
        shown = f"{first[:40]!r}" if first else "empty"
        raise ICalendarError(
            f"not iCalendar data: expected BEGIN:VCALENDAR on the first line, found {shown}"
        )


def describe_library_error(exc: BaseException, text: str) -> str:
    if isinstance(exc, OSError):  # its text names files of this server
        return f"the iCalendar data cannot be parsed ({type(exc).__name__})"
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return f"the iCalendar data cannot be parsed: {detail}"


def _message_from_calendar(calendar: Any, raw: bytes, text: str) -> ITipMessage:
    method_text = str(calendar.get("METHOD", "")).strip().upper()
    method: Method | None = None
    if method_text:
        try:
            method = Method(method_text)
        except ValueError:
            raise ICalendarError(
                f"METHOD {method_text[:40]!r} is not an iTIP method "
                f"(one of {', '.join(m.value for m in Method)})"
            ) from None
    components = calendar.walk("VEVENT")
    if not components:
        others = sorted({c.name for c in calendar.subcomponents if c.name not in ("VTIMEZONE",)})
        found = f" (found {', '.join(others)})" if others else ""
        raise ICalendarError(f"no VEVENT component{found}")
    context = ZoneContext(calendar, text)
    events = tuple(event_from_component(c, context, text) for c in components)
    # Every zone of its own that the calendar uses anywhere goes into the attachment: each is
    # read now, so that one too costly to compute is refused here, not when rendering.
    for component in calendar.subcomponents:
        if component.name != "VTIMEZONE":
            for tzid in tzids_of(component):
                context.zone_for(tzid)
    return ITipMessage(method=method, events=events, raw=raw, _calendar=calendar)


def event_from_component(component: Any, context: ZoneContext, text: str) -> Event:
    # Its properties are read once into a plain dict (keyed by the upper-cased names, as the
    # component stores them): a component's own ``get`` case-folds the name and, for an
    # absent property, raises and catches a KeyError (issue 14: 0.7 us a read, 1.6 us a miss;
    # an event is asked for about 35, year checks included).
    properties = properties_of(component)
    uid = _text(properties, "UID").strip()
    if not uid:
        summary = " ".join(_text(properties, "SUMMARY").split())[:60]
        named = f" ({summary!r})" if summary else ""
        raise ICalendarError(
            f"a VEVENT{named} has no UID; every event of an iTIP message needs one "
            "(RFC 5546 section 3.2)"
        )
    _reject_broken(properties, text, uid)
    event_years_check(properties)
    start_prop = _single(properties, "DTSTART", text, uid)
    end_prop = _single(properties, "DTEND", text, uid)
    duration_prop = _single(properties, "DURATION", text, uid)

    start = moment_of(start_prop, context) if start_prop is not None else None
    all_day = isinstance(start, dt.date) and not isinstance(start, dt.datetime)
    end: dt.date | dt.datetime | None = None
    if end_prop is not None:
        end = moment_of(end_prop, context)
    elif duration_prop is not None and start is not None:
        duration = getattr(duration_prop, "dt", None)
        if not isinstance(duration, dt.timedelta):
            raise ICalendarError(
                _at(text, "DURATION", str(duration_prop.to_ical().decode()), uid)
                + "DURATION must be a duration such as PT1H"
            )
        end = start + duration
    elif start is not None:
        # RFC 5545 section 3.6.1: a date DTSTART alone lasts one day; a date-time is instant.
        end = start + dt.timedelta(days=1) if all_day else start
    if start is not None and end is not None:
        end = _checked_end(start, end, text, uid)
        year_check(end, "the end of the event")
    recurrence_prop = _single(properties, "RECURRENCE-ID", text, uid)
    recurrence_id = moment_of(recurrence_prop, context) if recurrence_prop is not None else None
    this_and_future = (
        recurrence_prop is not None
        and str(recurrence_prop.params.get("RANGE", "")).upper() == "THISANDFUTURE"
    )
    dtstamp_prop = first_value(properties, "DTSTAMP")
    dtstamp_value = getattr(dtstamp_prop, "dt", None) if dtstamp_prop is not None else None
    dtstamp = dtstamp_value if isinstance(dtstamp_value, dt.datetime) else None
    tzid = (
        str(start_prop.params.get("TZID"))
        if start_prop is not None and ("TZID" in start_prop.params)
        else None
    )
    return Event(
        uid=uid,
        sequence=_sequence(properties, text, uid),
        recurrence_id=recurrence_id,
        this_and_future=this_and_future,
        dtstamp=dtstamp,
        summary=_text(properties, "SUMMARY"),
        description=_text(properties, "DESCRIPTION"),
        location=_text(properties, "LOCATION"),
        url=web_url(_text(properties, "URL")),
        conference_url=conference_url(properties),
        start=start,
        end=end,
        all_day=all_day,
        time_zone=zone_name(start, context, tzid),
        tzid=tzid,
        rrule=rrule_read(properties),
        rdates=tuple(_moments(properties, "RDATE", context)),
        exdates=tuple(_moments(properties, "EXDATE", context)),
        status=_text(properties, "STATUS").upper(),
        organizer=organizer_read(properties),
        attendees=tuple(attendees_read(properties)),
    )


def _reject_broken(component: Any, text: str, uid: str) -> None:
    for name in _ESSENTIAL_PROPERTIES:
        values = component.get(name)
        if values is None:
            continue
        for value in values if isinstance(values, list) else [values]:
            if isinstance(value, vBroken):
                kind = {"DURATION": "duration", "RRULE": "recurrence rule"}.get(name, "date-time")
                raise ICalendarError(
                    _at(text, name, str(value), uid)
                    + f"{name} has an invalid {kind} {str(value)[:60]!r}"
                )


def _at(text: str, name: str, raw_value: str, uid: str) -> str:
    """``"line 12: "`` when the property can be found in the text, else ``"event 'uid': "``."""
    line = _line_of(text, name, raw_value)
    if line is not None:
        return f"line {line}: "
    return f"event {uid[:80]!r}: " if uid else ""


def _line_of(text: str, name: str, raw_value: str) -> int | None:
    """The physical line where the content line ``name...raw_value`` starts (RFC 5545 3.1)."""
    wanted = name.upper()
    for number, logical in _logical_lines(text):
        head = logical[: len(wanted) + 1].upper()
        if head in (wanted + ":", wanted + ";") and (not raw_value or raw_value in logical):
            return number
    return None


def _logical_lines(text: str) -> Iterator[tuple[int, str]]:
    start_line, parts = 0, list[str]()
    for number, line in enumerate(text.splitlines(), start=1):
        if line[:1] in (" ", "\t") and parts:
            parts.append(line[1:])
            continue
        if parts:
            yield start_line, "".join(parts)
        start_line, parts = number, [line]
    if parts:
        yield start_line, "".join(parts)


def properties_of(component: Any) -> dict[str, Any]:
    """A component's properties as a plain dict, keyed by their upper-cased names (icalendar's
    ``CaselessDict`` stores them so): read with ``.get("NAME")`` like the component itself.
    A snapshot: properties added to the component later are not in it."""
    return dict(component.items())


def first_value(component: Any, name: str) -> Any:
    """The first value of the property ``name`` (upper-case) of a component or of its
    :func:`properties_of`, or None."""
    value = component.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _single(component: Any, name: str, text: str, uid: str) -> Any:
    value = component.get(name)
    if isinstance(value, list):
        if len(value) > 1:
            raise ICalendarError(
                _at(text, name, "", uid) + f"{name} appears {len(value)} times in one VEVENT"
            )
        return value[0] if value else None
    return value


def _text(component: Any, name: str) -> str:
    value = first_value(component, name)
    return "" if value is None else str(value)


def _sequence(component: Any, text: str, uid: str) -> int:
    value = first_value(component, "SEQUENCE")
    if value is None:
        return 0
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ICalendarError(
            _at(text, "SEQUENCE", str(value), uid)
            + f"SEQUENCE must be a whole number, not {str(value)[:40]!r}"
        ) from None
    if number < 0:
        raise ICalendarError(_at(text, "SEQUENCE", str(value), uid) + "SEQUENCE is negative")
    return number


def moment_of(prop: Any, context: ZoneContext) -> dt.date | dt.datetime:
    value = prop.dt
    if isinstance(value, dt.datetime):
        tzid = prop.params.get("TZID")
        return _localize(value, str(tzid) if tzid is not None else None, context)
    if isinstance(value, dt.date):
        return value
    raise ICalendarError(f"a date or date-time was expected, not {type(value).__name__}")


def _localize(value: dt.datetime, tzid: str | None, context: ZoneContext) -> dt.datetime:
    wall = value.replace(tzinfo=None)
    if tzid is not None:
        zone = context.zone_for(tzid)
        if zone is not None:
            return wall.replace(tzinfo=zone)
        return wall  # unknown zone without a definition: floating, shown as written
    if value.tzinfo is not None:
        return value.astimezone(UTC)
    if context.x_wr_zone is not None:
        return wall.replace(tzinfo=context.x_wr_zone)
    return wall


def _moments(component: Any, name: str, context: ZoneContext) -> Iterator[dt.date | dt.datetime]:
    values = component.get(name)
    if values is None:
        return
    for entry in values if isinstance(values, list) else [values]:
        tzid = entry.params.get("TZID") if hasattr(entry, "params") else None
        for item in getattr(entry, "dts", []):
            value = item.dt
            if isinstance(value, tuple):  # PERIOD: (start, end or duration)
                value = value[0]
            if isinstance(value, dt.datetime):
                yield _localize(value, str(tzid) if tzid is not None else None, context)
            elif isinstance(value, dt.date):
                yield value


def _checked_end(
    start: dt.date | dt.datetime, end: dt.date | dt.datetime, text: str, uid: str
) -> dt.date | dt.datetime:
    start_is_day = not isinstance(start, dt.datetime)
    end_is_day = not isinstance(end, dt.datetime)
    if start_is_day != end_is_day:
        raise ICalendarError(
            _at(text, "DTEND", "", uid)
            + "DTSTART and DTEND must both be dates or both date-times (RFC 5545 3.8.2.2)"
        )
    try:
        before = end < start  # type: ignore[operator]
    except TypeError:
        # One floating, one zoned: compare wall clocks.
        assert isinstance(start, dt.datetime) and isinstance(end, dt.datetime)
        before = end.replace(tzinfo=None) < start.replace(tzinfo=None)
    if before:
        raise ICalendarError(_at(text, "DTEND", "", uid) + "DTEND is before DTSTART")
    return end
