"""iCalendar in and out: the one module that imports ``icalendar`` (STYLE.md rule 6).

:func:`parse_itip` turns an iTIP body (RFC 5546) into typed dataclasses; :func:`build_attachment`
turns a parsed message back into the bytes of the ``text/calendar`` part of an email
(RFC 6047). Every problem with the input is reported as one :class:`ICalendarError` whose
message a person can act on ("line 12: DTSTART has an invalid date-time '2026130T'"); no other
exception leaves :func:`parse_itip`, whatever the bytes.

Time zones (RFC 5545 section 3.2.19) are resolved in this order for a ``TZID`` parameter: an
IANA name; a Windows zone name (Outlook, Exchange) mapped to IANA through the CLDR table that
``icalendar`` ships; the IANA suffix of a "globally unique" TZID
(``/mozilla.org/.../Europe/Berlin``); the calendar's own ``VTIMEZONE`` definition; else the
time is floating (shown as written).
Floating times and dates take the calendar's ``X-WR-TIMEZONE`` when it names a known zone.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import threading
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import icalendar
from icalendar.prop import vBroken
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

__all__ = [
    "Attendee",
    "Event",
    "ICalendarError",
    "ITipMessage",
    "Method",
    "Organizer",
    "PartStat",
    "RecurrenceRule",
    "build_attachment",
    "parse_itip",
]

UTC = dt.UTC

# Exceptions the parser library is known to raise on malformed input. The contract of
# ``parse_itip`` is that bad bytes give ICalendarError and nothing else, so everything the
# library can raise while reading untrusted data is translated here, at the boundary.
_LIBRARY_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    LookupError,
    ArithmeticError,
    RecursionError,
    AssertionError,
    NotImplementedError,
)

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


class ICalendarError(ValueError):
    """The data is not an iCalendar object we can use; the message says what to fix."""


class Method(StrEnum):
    """iTIP methods (RFC 5546 section 1.4)."""

    PUBLISH = "PUBLISH"
    REQUEST = "REQUEST"
    REPLY = "REPLY"
    ADD = "ADD"
    CANCEL = "CANCEL"
    REFRESH = "REFRESH"
    COUNTER = "COUNTER"
    DECLINECOUNTER = "DECLINECOUNTER"


class PartStat(StrEnum):
    """Participation status of an attendee of a VEVENT (RFC 5545 section 3.2.12)."""

    NEEDS_ACTION = "NEEDS-ACTION"
    ACCEPTED = "ACCEPTED"
    DECLINED = "DECLINED"
    TENTATIVE = "TENTATIVE"
    DELEGATED = "DELEGATED"


@dataclass(frozen=True)
class Organizer:
    """ORGANIZER: ``address`` is the bare, lower-cased email address (no ``mailto:``)."""

    address: str
    name: str


@dataclass(frozen=True)
class Attendee:
    """ATTENDEE with the parameters iTIP cares about (RFC 5545 section 3.8.4.1)."""

    address: str
    name: str
    partstat: PartStat | str
    role: str
    rsvp: bool


@dataclass(frozen=True)
class RecurrenceRule:
    """One RRULE (RFC 5545 section 3.3.10), with the parts a human wording needs.

    ``until`` keeps the value as written (date, aware or floating date-time). ``by_day`` holds
    items such as ``"TU"`` or ``"-1FR"``. ``other`` lists the parts not broken out above (for
    example ``BYHOUR``) as ``(name, value)`` pairs; ``text`` is the rule as iCalendar text.
    """

    freq: str
    interval: int = 1
    count: int | None = None
    until: dt.date | dt.datetime | None = None
    by_day: tuple[str, ...] = ()
    by_month_day: tuple[int, ...] = ()
    by_month: tuple[int, ...] = ()
    by_set_pos: tuple[int, ...] = ()
    week_start: str | None = None
    other: tuple[tuple[str, str], ...] = ()
    text: str = ""

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Event:
    """One VEVENT of an iTIP message: the master or an override (``recurrence_id`` set).

    Date-times are aware when the data gives a zone (``TZID``, ``Z`` or ``X-WR-TIMEZONE``) and
    naive when floating; all-day values are dates, and ``end`` is then exclusive (RFC 5545
    section 3.6.1: a one-day event ends the next day). ``end`` is computed from ``DURATION``
    when ``DTEND`` is absent. ``start`` is ``None`` only where iTIP lets DTSTART out (REPLY,
    CANCEL, REFRESH). ``time_zone`` is the IANA name of the event's zone (None when floating,
    UTC or an unidentifiable custom zone); ``tzid`` is DTSTART's TZID exactly as written.
    """

    uid: str
    sequence: int = 0
    recurrence_id: dt.date | dt.datetime | None = None
    this_and_future: bool = False
    dtstamp: dt.datetime | None = None
    summary: str = ""
    description: str = ""
    location: str = ""
    url: str = ""
    conference_url: str = ""
    start: dt.date | dt.datetime | None = None
    end: dt.date | dt.datetime | None = None
    all_day: bool = False
    time_zone: str | None = None
    tzid: str | None = field(default=None, compare=False)
    rrule: RecurrenceRule | None = None
    rdates: tuple[dt.date | dt.datetime, ...] = ()
    exdates: tuple[dt.date | dt.datetime, ...] = ()
    status: str = ""
    organizer: Organizer | None = None
    attendees: tuple[Attendee, ...] = ()

    @property
    def recurring(self) -> bool:
        return self.rrule is not None or bool(self.rdates)

    def attendee(self, address: str) -> Attendee | None:
        """The attendee with this address (compared like :func:`clean_address`), if any."""
        wanted = clean_address(address)
        return next((a for a in self.attendees if a.address == wanted), None)


@dataclass(frozen=True)
class ITipMessage:
    """A parsed iTIP message: its METHOD (None when absent) and its VEVENTs, in order."""

    method: Method | None
    events: tuple[Event, ...]
    raw: bytes = field(repr=False)
    _calendar: Any = field(default=None, repr=False, compare=False)

    @property
    def master(self) -> Event | None:
        """The event without RECURRENCE-ID, if the message has one."""
        return next((e for e in self.events if e.recurrence_id is None), None)

    @property
    def primary(self) -> Event:
        """The master, else the first event (a message about one occurrence only)."""
        return self.master or self.events[0]

    @property
    def uid(self) -> str:
        return self.primary.uid

    @property
    def overrides(self) -> tuple[Event, ...]:
        return tuple(e for e in self.events if e.recurrence_id is not None)


def clean_address(value: str) -> str:
    """``mailto:Alice@Example.org`` (any case, whitespace from folding) -> ``alice@example.org``."""
    text = "".join(str(value).split()).strip('"')
    if text[:7].lower() == "mailto:":
        text = text[7:]
    return text.lower()


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
    text = _decode(raw)
    if "\n" not in text and "\r" in text:
        text = text.replace("\r", "\n")  # classic Mac OS line ends
    _check_envelope(text)
    try:
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except _LIBRARY_ERRORS as exc:
        raise ICalendarError(_describe_library_error(exc, text)) from exc
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
    except _LIBRARY_ERRORS as exc:
        raise ICalendarError(_describe_library_error(exc, text)) from exc


def _decode(raw: bytes) -> str:
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


def _check_envelope(text: str) -> None:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if first.upper() != "BEGIN:VCALENDAR":
        shown = f"{first[:40]!r}" if first else "empty"
        raise ICalendarError(
            f"not iCalendar data: expected BEGIN:VCALENDAR on the first line, found {shown}"
        )


def _describe_library_error(exc: BaseException, text: str) -> str:
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
    context = _ZoneContext(calendar, text)
    events = tuple(_event_from_component(c, context, text) for c in components)
    return ITipMessage(method=method, events=events, raw=raw, _calendar=calendar)


class _ZoneContext:
    """Resolves TZIDs against the IANA database and this calendar's own VTIMEZONEs."""

    def __init__(self, calendar: Any, text: str) -> None:
        self.vtimezones: dict[str, Any] = {}
        for component in calendar.walk("VTIMEZONE"):
            tzid = str(component.get("TZID", ""))
            self.vtimezones.setdefault(tzid, component)
        self.text = text
        wr = str(calendar.get("X-WR-TIMEZONE", "")).strip()
        self.x_wr_zone: zoneinfo.ZoneInfo | None = _iana_zone(wr) if wr else None

    def zone_for(self, tzid: str) -> dt.tzinfo | None:
        """The tzinfo for a TZID, or None when nothing identifies it (the time is floating)."""
        zone = _iana_zone(tzid)
        if zone is not None:
            return zone
        component = self.vtimezones.get(tzid)
        if component is None:
            return None
        return _custom_zone(component)


def _iana_zone(tzid: str) -> zoneinfo.ZoneInfo | None:
    name = iana_name(tzid)
    return _zoneinfo(name) if name else None


@functools.cache
def _available_zones() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


@functools.lru_cache(maxsize=512)
def iana_name(tzid: str) -> str | None:
    """The IANA name a TZID stands for: itself, a Windows name's mapping, a suffix, or None."""
    zones = _available_zones()
    cleaned = tzid.strip().strip('"').strip()
    candidates = [cleaned, cleaned.strip("/")]
    windows = WINDOWS_TO_OLSON.get(cleaned)
    if windows:
        candidates.append(windows)
    parts = cleaned.strip("/").split("/")
    candidates += ["/".join(parts[i:]) for i in range(1, len(parts))]
    for candidate in candidates:
        name = zones.get(candidate.lower())
        if name:
            return _current_name(name)
    return None


# Old spellings that the CLDR Windows table (and old software) still writes, with the names the
# tz database uses today. Only renames: tzdata also links zones merged since 1970 (Reykjavik
# to Abidjan, Amsterdam to Brussels), which would show a reader the wrong city.
_RENAMED = {
    "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
    "America/Godthab": "America/Nuuk",
    "America/Indianapolis": "America/Indiana/Indianapolis",
    "Asia/Calcutta": "Asia/Kolkata",
    "Asia/Katmandu": "Asia/Kathmandu",
    "Asia/Rangoon": "Asia/Yangon",
    "Asia/Saigon": "Asia/Ho_Chi_Minh",
    "Atlantic/Faeroe": "Atlantic/Faroe",
    "Europe/Kiev": "Europe/Kyiv",
    "Pacific/Enderbury": "Pacific/Kanton",
    "Etc/UTC": "UTC",
    "Etc/UCT": "UTC",
    "Etc/Universal": "UTC",
    "Etc/Zulu": "UTC",
    "UCT": "UTC",
    "Universal": "UTC",
    "Zulu": "UTC",
}


def _current_name(name: str) -> str:
    renamed = _RENAMED.get(name, name)
    return renamed if renamed in _available_zones().values() else name


@functools.lru_cache(maxsize=512)
def _zoneinfo(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


class _BoundedCache:
    """A process-wide memo of at most ``size`` entries, safe to share between threads."""

    def __init__(self, size: int) -> None:
        self._data: dict[Any, Any] = {}
        self._size = size
        self._lock = threading.Lock()

    def get_or_build(self, key: Any, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._data:
                return self._data[key]
        value = build()
        with self._lock:
            self._data[key] = value
            while len(self._data) > self._size:
                self._data.pop(next(iter(self._data)))
        return value


_CUSTOM_ZONES = _BoundedCache(256)


def _custom_zone(component: Any) -> dt.tzinfo | None:
    # icalendar caches custom zones per process by TZID, so two calendars that define
    # "Customized Time Zone" differently would share the first definition. Build each one
    # from its own VTIMEZONE instead, cached by the content of the definition.
    try:
        key = hashlib.sha256(component.to_ical()).digest()
    except _LIBRARY_ERRORS:
        return None

    def build() -> dt.tzinfo | None:
        try:
            return component.to_tz(lookup_tzid=False)
        except _LIBRARY_ERRORS:
            return None

    return _CUSTOM_ZONES.get_or_build(key, build)


def _event_from_component(component: Any, context: _ZoneContext, text: str) -> Event:
    uid = _text(component, "UID").strip()
    if not uid:
        summary = " ".join(_text(component, "SUMMARY").split())[:60]
        named = f" ({summary!r})" if summary else ""
        raise ICalendarError(
            f"a VEVENT{named} has no UID; every event of an iTIP message needs one "
            "(RFC 5546 section 3.2)"
        )
    _reject_broken(component, text, uid)
    start_prop = _single(component, "DTSTART", text, uid)
    end_prop = _single(component, "DTEND", text, uid)
    duration_prop = _single(component, "DURATION", text, uid)

    start = _moment(start_prop, context) if start_prop is not None else None
    all_day = isinstance(start, dt.date) and not isinstance(start, dt.datetime)
    end: dt.date | dt.datetime | None = None
    if end_prop is not None:
        end = _moment(end_prop, context)
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
    recurrence_prop = _single(component, "RECURRENCE-ID", text, uid)
    recurrence_id = _moment(recurrence_prop, context) if recurrence_prop is not None else None
    this_and_future = (
        recurrence_prop is not None
        and str(recurrence_prop.params.get("RANGE", "")).upper() == "THISANDFUTURE"
    )
    dtstamp_prop = _first(component, "DTSTAMP")
    dtstamp_value = getattr(dtstamp_prop, "dt", None) if dtstamp_prop is not None else None
    dtstamp = dtstamp_value if isinstance(dtstamp_value, dt.datetime) else None
    tzid = (
        str(start_prop.params.get("TZID"))
        if start_prop is not None and ("TZID" in start_prop.params)
        else None
    )
    return Event(
        uid=uid,
        sequence=_sequence(component, text, uid),
        recurrence_id=recurrence_id,
        this_and_future=this_and_future,
        dtstamp=dtstamp,
        summary=_text(component, "SUMMARY"),
        description=_text(component, "DESCRIPTION"),
        location=_text(component, "LOCATION"),
        url=_web_url(_text(component, "URL")),
        conference_url=_conference_url(component),
        start=start,
        end=end,
        all_day=all_day,
        time_zone=_zone_name(start, context, tzid),
        tzid=tzid,
        rrule=_rrule(component),
        rdates=tuple(_moments(component, "RDATE", context)),
        exdates=tuple(_moments(component, "EXDATE", context)),
        status=_text(component, "STATUS").upper(),
        organizer=_organizer(component),
        attendees=tuple(_attendees(component)),
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


def _first(component: Any, name: str) -> Any:
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
    value = _first(component, name)
    return "" if value is None else str(value)


def _sequence(component: Any, text: str, uid: str) -> int:
    value = _first(component, "SEQUENCE")
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


def _moment(prop: Any, context: _ZoneContext) -> dt.date | dt.datetime:
    value = prop.dt
    if isinstance(value, dt.datetime):
        tzid = prop.params.get("TZID")
        return _localize(value, str(tzid) if tzid is not None else None, context)
    if isinstance(value, dt.date):
        return value
    raise ICalendarError(f"a date or date-time was expected, not {type(value).__name__}")


def _localize(value: dt.datetime, tzid: str | None, context: _ZoneContext) -> dt.datetime:
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


def _moments(component: Any, name: str, context: _ZoneContext) -> Iterator[dt.date | dt.datetime]:
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


def _zone_name(
    start: dt.date | dt.datetime | None, context: _ZoneContext, tzid: str | None = None
) -> str | None:
    if isinstance(start, dt.datetime) and isinstance(start.tzinfo, zoneinfo.ZoneInfo):
        key = start.tzinfo.key
        return None if key == "UTC" else key
    if isinstance(start, dt.datetime) and start.tzinfo is not None and tzid:
        # A custom VTIMEZONE: the IANA zone it stands for when its name gives a city
        # ("(UTC+07:00) Bangkok, Hanoi, Jakarta") whose offsets match around the event.
        guessed = _zone_named_in(tzid, start)
        if guessed is not None:
            return guessed
    if context.x_wr_zone is not None and (
        not isinstance(start, dt.datetime) or start.tzinfo is UTC
    ):
        return context.x_wr_zone.key
    return None


_REGIONS = frozenset(
    {"Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe"}
    | {"Indian", "Pacific"}
)


@functools.cache
def _zones_by_city() -> dict[str, list[str]]:
    cities: dict[str, list[str]] = {}
    for name in sorted(_available_zones().values()):
        if name.split("/", 1)[0] in _REGIONS:  # not Canada/Eastern, US/Pacific and the like
            city = name.rsplit("/", 1)[1].replace("_", " ").lower()
            cities.setdefault(city, []).append(name)
    return cities


def _zone_named_in(label: str, moment: dt.datetime) -> str | None:
    words = " " + " ".join("".join(c if c.isalnum() else " " for c in label.lower()).split()) + " "
    found = sorted(
        (words.index(f" {city} "), name)
        for city, names in _zones_by_city().items()
        if f" {city} " in words
        for name in names
    )
    for _, name in found:
        zone = _zoneinfo(name)
        samples = (moment + dt.timedelta(days=day) for day in range(-182, 183, 7))
        if all(s.utcoffset() == s.astimezone(zone).utcoffset() for s in samples):
            return _current_name(name)
    return None


def _rrule(component: Any) -> RecurrenceRule | None:
    value = _first(component, "RRULE")
    if value is None:
        return None
    return recurrence_rule_from_parts(value, text=value.to_ical().decode())


def recurrence_rule_from_parts(parts: Mapping[str, Any], *, text: str) -> RecurrenceRule:
    """Structure an RRULE mapping (as icalendar reads it) into a :class:`RecurrenceRule`."""
    known = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH"}
    known |= {"BYSETPOS", "WKST"}

    def values(name: str) -> list[Any]:
        found = parts.get(name)
        if found is None:
            return []
        return list(found) if isinstance(found, list | tuple) else [found]

    def integers(name: str) -> tuple[int, ...]:
        return tuple(int(v) for v in values(name))

    freq = str((values("FREQ") or [""])[0]).upper()
    interval = int((values("INTERVAL") or [1])[0]) or 1
    count_values = values("COUNT")
    until_values = values("UNTIL")
    other = tuple(
        (str(name).upper(), ",".join(str(v) for v in values(str(name))))
        for name in parts
        if str(name).upper() not in known
    )
    return RecurrenceRule(
        freq=freq,
        interval=interval,
        count=int(count_values[0]) if count_values else None,
        until=until_values[0] if until_values else None,
        by_day=tuple(str(v).upper() for v in values("BYDAY")),
        by_month_day=integers("BYMONTHDAY"),
        by_month=integers("BYMONTH"),
        by_set_pos=integers("BYSETPOS"),
        week_start=str(values("WKST")[0]).upper() if values("WKST") else None,
        other=other,
        text=text,
    )


def _web_url(value: str) -> str:
    """Only http(s) links go into emails; anything else (javascript:, data:) is dropped."""
    value = value.strip()
    return value if value[:8].lower() == "https://" or value[:7].lower() == "http://" else ""


def _conference_url(component: Any) -> str:
    # RFC 7986 CONFERENCE first, then the vendor properties Google and Microsoft use.
    conferences = component.get("CONFERENCE")
    for value in conferences if isinstance(conferences, list) else [conferences]:
        if value is not None and _web_url(str(value)):
            return _web_url(str(value))
    for name in ("X-GOOGLE-CONFERENCE", "X-MICROSOFT-SKYPETEAMSMEETINGURL"):
        url = _web_url(_text(component, name))
        if url:
            return url
    return ""


def _param(prop: Any, name: str) -> str:
    params = getattr(prop, "params", {})
    value = params.get(name, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return " ".join(str(value).split())


def _organizer(component: Any) -> Organizer | None:
    prop = _first(component, "ORGANIZER")
    if prop is None:
        return None
    return Organizer(address=clean_address(str(prop)), name=_param(prop, "CN"))


def _attendees(component: Any) -> Iterator[Attendee]:
    props = component.get("ATTENDEE")
    if props is None:
        return
    for prop in props if isinstance(props, list) else [props]:
        partstat_text = _param(prop, "PARTSTAT").upper() or PartStat.NEEDS_ACTION.value
        try:
            partstat: PartStat | str = PartStat(partstat_text)
        except ValueError:
            partstat = partstat_text
        yield Attendee(
            address=clean_address(str(prop)),
            name=_param(prop, "CN"),
            partstat=partstat,
            role=_param(prop, "ROLE").upper() or "REQ-PARTICIPANT",
            rsvp=_param(prop, "RSVP").upper() == "TRUE",
        )


# --- Building ---------------------------------------------------------------------------------


def build_attachment(
    message: ITipMessage, *, itip_enabled: bool, method: Method | str | None = None
) -> bytes:
    """The ``text/calendar`` body to attach to an email (RFC 6047 section 2.4).

    With ``itip_enabled`` the METHOD line is ``method`` (default: the message's own), so mail
    clients show their own buttons; without it METHOD is removed (a plain calendar file).
    Every TZID used has a VTIMEZONE (RFC 5545 section 3.6.5): a TZID that names an IANA or
    Windows zone gets a definition generated from the IANA database (the rules this module
    used to read the times, whatever the sender's VTIMEZONE said); a custom VTIMEZONE is kept
    when it is usable; a TZID that nothing identifies is dropped from its properties, so the
    times stay floating as they were read. The result re-parses to the same events.
    """
    chosen = Method(str(method).upper()) if method else message.method
    source = message._calendar
    if source is None:
        source = icalendar.Calendar.from_ical(_decode(message.raw))
    calendar = icalendar.Calendar()
    for name, value in source.items():
        if name.upper() != "METHOD":
            calendar[name] = value
    if itip_enabled and chosen is not None:
        calendar.add("METHOD", chosen.value)
    if "PRODID" not in calendar:
        calendar.add("PRODID", "-//Convoke//Convoke//EN")
    if "VERSION" not in calendar:
        calendar.add("VERSION", "2.0")

    first, last = _date_span(message.events)
    # A custom zone's own definition is kept when it is well formed; senders' broken ones
    # (DATE-valued DTSTART, missing offsets) are rewritten from the offsets we read them with,
    # since other clients would read them differently from us.
    custom: dict[str, Any] = {}
    for component in source.walk("VTIMEZONE"):
        tzid = str(component.get("TZID", ""))
        if tzid and iana_name(tzid) is None and tzid not in custom:
            rewritten = _custom_definition(component, tzid, first, last)
            if rewritten is not None:
                custom[tzid] = rewritten
    used: set[str] = set()
    for component in source.subcomponents:
        if component.name == "VTIMEZONE":
            continue
        tzids = set(_tzids(component))
        unknown = {t for t in tzids if iana_name(t) is None and t not in custom}
        used |= tzids - unknown
        if unknown or _has_broken(component):
            component = _cleaned(component, unknown)
        calendar.add_component(component)
    timezones = []
    for tzid in sorted(used):
        if tzid in custom:
            timezones.append(custom[tzid])
            continue
        name = iana_name(tzid)
        if name is None or (name == "UTC" and tzid.upper() == "UTC"):
            continue
        timezone = _generated_timezone(name, first, last)
        if tzid != name:
            timezone = deepcopy(timezone)
            timezone["TZID"] = tzid
        timezones.append(timezone)
    calendar.subcomponents[0:0] = timezones
    return bytes(calendar.to_ical())


@functools.lru_cache(maxsize=256)
def _generated_timezone(name: str, first: dt.date, last: dt.date) -> Any:
    return icalendar.Timezone.from_tzid(name, first_date=first, last_date=last)


def _custom_definition(component: Any, tzid: str, first: dt.date, last: dt.date) -> Any:
    """The VTIMEZONE to attach for a zone that has no IANA name, or None if unusable."""
    zone = _custom_zone(component)
    if zone is None:
        return None
    if _well_formed(component):
        return component
    key = (hashlib.sha256(component.to_ical()).digest(), first, last)

    def build() -> Any:
        try:
            return icalendar.Timezone.from_tzinfo(zone, tzid=tzid, first_date=first, last_date=last)
        except _LIBRARY_ERRORS:
            return None

    return _REWRITTEN_ZONES.get_or_build(key, build)


_REWRITTEN_ZONES = _BoundedCache(256)


def _well_formed(component: Any) -> bool:
    """STANDARD/DAYLIGHT parts with a local DATE-TIME start and both offsets (RFC 5545 3.6.5)."""
    parts = component.subcomponents
    if not parts or _has_broken(component):
        return False
    for part in parts:
        if part.name not in ("STANDARD", "DAYLIGHT"):
            return False
        start = getattr(part.get("DTSTART"), "dt", None)
        if not isinstance(start, dt.datetime) or start.tzinfo is not None:
            return False
        for name in ("TZOFFSETFROM", "TZOFFSETTO"):
            if not isinstance(getattr(part.get(name), "td", None), dt.timedelta):
                return False
    return True


def _unreadable(item: Any) -> bool:
    # icalendar refuses SEQUENCE values over 2**31; they are still whole numbers we read.
    return isinstance(item, vBroken) and not (
        str(item.property_name).upper() == "SEQUENCE" and str(item).isdigit()
    )


def _has_broken(component: Any) -> bool:
    return any(
        _unreadable(item)
        for value in component.values()
        for item in (value if isinstance(value, list) else [value])
    ) or any(_has_broken(sub) for sub in component.subcomponents)


def _cleaned(component: Any, unknown: set[str]) -> Any:
    """A copy without unreadable properties, and without these TZIDs (the times float)."""
    copy = deepcopy(component)
    for part in copy.walk():
        for name, value in list(part.items()):
            items = value if isinstance(value, list) else [value]
            kept = [item for item in items if not _unreadable(item)]
            if len(kept) != len(items):
                del part[name]
                for item in kept:
                    part.add(name, item)
            for item in kept:
                params = getattr(item, "params", None)
                if params is not None and str(params.get("TZID", "")) in unknown:
                    del params["TZID"]
    return copy


def _tzids(component: Any) -> Iterable[str]:
    for value in component.values():
        for item in value if isinstance(value, list) else [value]:
            params = getattr(item, "params", None)
            if params is not None and "TZID" in params:
                yield str(params["TZID"])


def _date_span(events: Iterable[Event]) -> tuple[dt.date, dt.date]:
    days: list[dt.date] = []
    for event in events:
        for value in (event.start, event.end, event.recurrence_id, *event.rdates, *event.exdates):
            if value is not None:
                days.append(value.date() if isinstance(value, dt.datetime) else value)
        until = event.rrule.until if event.rrule else None
        if until is not None:
            days.append(until.date() if isinstance(until, dt.datetime) else until)
        elif event.rrule is not None and event.start is not None:
            start_day = event.start.date() if isinstance(event.start, dt.datetime) else event.start
            # An endless series: ten years of definitions (clients extend the last rule).
            days.append(start_day + dt.timedelta(days=366 * 10))
    if not days:
        today = dt.date.today()
        days = [today]
    # Whole years, so that generated VTIMEZONEs are shared between messages (a cache hit).
    first = dt.date(max(min(days).year - 1, 1), 1, 1)
    last = dt.date(min(max(days).year + 1, 9998), 12, 31)
    return first, last


# --- Booking events ---------------------------------------------------------------------------
# Built for the bookings' provider sync (calendars.booking_sync): the object PUT to a CalDAV
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
    zone = _zoneinfo(name)
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
        calendar.add_component(_generated_timezone(name, first, last))
    calendar.add_component(event)
    return bytes(calendar.to_ical())


# --- Attendee answers (RSVP) -------------------------------------------------------------------
# The organizer's stored copy of an event gets one attendee's PARTSTAT (RFC 5545 section
# 3.2.12), and the iTIP REPLY that tells the organizer (RFC 5546 section 3.2.3) is built from
# it. Occurrences are named by :func:`recurrence_key`, the form RSVP tokens carry.


class NotAnAttendee(ICalendarError):
    """The address is not an ATTENDEE of the event (or of the occurrence answered)."""


class OccurrenceNotFound(ICalendarError):
    """The RECURRENCE-ID names no occurrence of the event (removed, or never part of it)."""


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
    text = _decode(bytes(data))
    _check_envelope(text)
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except _LIBRARY_ERRORS as exc:
        raise ICalendarError(_describe_library_error(exc, text)) from exc
    if not calendar.walk("VEVENT"):
        raise ICalendarError("no VEVENT component")
    return calendar, text


def _component_key(component: Any, context: _ZoneContext) -> str | None:
    prop = _first(component, "RECURRENCE-ID")
    if prop is None:
        return None
    return recurrence_key(_moment(prop, context))


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
    master: Any, moment: dt.date | dt.datetime, context: _ZoneContext, text: str
) -> bool:
    """Whether ``moment`` is an occurrence of the master's recurrence set (RRULE, RDATE, minus
    EXDATE; RFC 5545 section 3.8.5). A rule that cannot be evaluated does not refuse."""
    from dateutil.rrule import rruleset, rrulestr

    event = _event_from_component(master, context, text)
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

    first = placed(start)
    wanted = placed(moment)
    try:
        rules = rruleset()
        if event.rrule is not None:
            # A floating or all-day start compares wall clocks: UNTIL is read without zone.
            rules.rrule(rrulestr(event.rrule.text, dtstart=first, ignoretz=zone is None))
        for extra in event.rdates:
            rules.rdate(placed(extra))
        for removed in event.exdates:
            rules.exdate(placed(removed))
        found = rules.after(wanted - dt.timedelta(seconds=1), inc=False)
    except (ValueError, TypeError, OverflowError):
        return True
    return found is not None and found == wanted


def _occurrence_value(start_prop: Any, moment: dt.date | dt.datetime, context: _ZoneContext) -> Any:
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


def _override_from_master(master: Any, key: str, context: _ZoneContext, text: str) -> Any:
    """A new override (RFC 5545 section 3.8.4.4) of the master for the occurrence ``key``."""
    moment = _key_moment(key)
    start_prop = _first(master, "DTSTART")
    if start_prop is None:
        raise OccurrenceNotFound("the event has no DTSTART, so it has no occurrences")
    start_value = _moment(start_prop, context)
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
    event = _event_from_component(master, context, text)
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
    if _first(master, "DTEND") is not None:
        override["DTEND"] = _occurrence_value(start_prop, moment + duration, context)
    elif _first(master, "DURATION") is not None:
        override["DURATION"] = deepcopy(_first(master, "DURATION"))
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
    context = _ZoneContext(calendar, text)
    events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    master = next((c for c in events if _first(c, "RECURRENCE-ID") is None), None)
    overrides = [c for c in events if _first(c, "RECURRENCE-ID") is not None]
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
        if _first(target, "STATUS") is not None and str(_first(target, "STATUS")).upper() == (
            "CANCELLED"
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

    One VEVENT: the master (the whole event) or the override of ``recurrence_id``, with
    UID, SEQUENCE, ORGANIZER, the times, SUMMARY and LOCATION, a fresh DTSTAMP, and only
    this attendee's ATTENDEE with its current PARTSTAT; the VTIMEZONEs its times use come
    along. Raises :class:`NotAnAttendee`, :class:`OccurrenceNotFound` or
    :class:`ICalendarError`.
    """
    calendar, text = _stored_calendar(data)
    context = _ZoneContext(calendar, text)
    events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    if recurrence_id is None:
        source = next((c for c in events if _first(c, "RECURRENCE-ID") is None), None)
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
        *("LOCATION", "ORGANIZER", "RRULE", "RDATE", "EXDATE", "STATUS"),
    )
    for name in kept:
        if name in source:
            event[name] = deepcopy(source[name])
    event.add("DTSTAMP", (dtstamp or dt.datetime.now(UTC)).astimezone(UTC))
    event["ATTENDEE"] = deepcopy(answering[0])
    tzids = set(_tzids(event))
    for component in calendar.subcomponents:
        if component.name == "VTIMEZONE" and str(component.get("TZID", "")) in tzids:
            reply.add_component(deepcopy(component))
    reply.add_component(event)
    return bytes(reply.to_ical())


def occurrence_event(data: bytes, *, recurrence_id: str | None) -> Event:
    """The event an answer is about, read from a stored calendar object.

    Without ``recurrence_id``: the master (or the first VEVENT when the object holds only
    overrides). With it: that occurrence's override, or else the master placed at that
    occurrence (``recurrence_id``, ``start`` and ``end`` set, no recurrence rule), in the
    master's zone. Raises :class:`OccurrenceNotFound` when the series has no such
    occurrence (an EXDATE removed it, or it never was one) and :class:`ICalendarError`.
    """
    calendar, text = _stored_calendar(data)
    context = _ZoneContext(calendar, text)
    components = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    master = next((c for c in components if _first(c, "RECURRENCE-ID") is None), None)
    if recurrence_id is None:
        return _event_from_component(master or components[0], context, text)
    for component in components:
        if _component_key(component, context) == recurrence_id:
            return _event_from_component(component, context, text)
    if master is None:
        raise OccurrenceNotFound("the event has no such occurrence")
    moment = _key_moment(recurrence_id)
    event = _event_from_component(master, context, text)
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
    from dataclasses import replace

    return replace(
        event,
        recurrence_id=moment,
        start=moment,
        end=moment + duration,
        rrule=None,
        rdates=(),
        exdates=(),
    )
