"""The typed results of reading iCalendar data, and the one error every reader raises.

Everything here is plain data: the parser (:mod:`calendars.ical.parse`) fills these
dataclasses and the rest of Convoke reads them, never ``icalendar`` objects.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

UTC = dt.UTC

# Exceptions the parser library is known to raise on malformed input. Every reader of
# untrusted data promises ICalendarError and nothing else, so everything the library can
# raise is translated at the boundary.
LIBRARY_ERRORS: tuple[type[BaseException], ...] = (
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
    OSError,
)


class ICalendarError(ValueError):
    """The data is not an iCalendar object we can use; the message says what to fix."""


class BudgetExceeded(ICalendarError):
    """The data asks for more than Convoke reads (docs/design.md section 1.5); ``limit`` names the
    budget ("nesting depth", "year range", "time-zone rules", ...) and the message the value."""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message)
        self.limit = limit


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


# The methods Convoke turns into emails (docs/design.md 1.1: REQUEST, REPLY, CANCEL).
ITIP_EMAIL_METHODS = (Method.REQUEST, Method.REPLY, Method.CANCEL)


class EventStatus(StrEnum):
    """STATUS of a VEVENT (RFC 5545 section 3.8.1.11)."""

    TENTATIVE = "TENTATIVE"
    CONFIRMED = "CONFIRMED"
    CANCELLED = "CANCELLED"


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


class NotAnAttendee(ICalendarError):
    """The address is not an ATTENDEE of the event (or of the occurrence answered)."""


class OccurrenceNotFound(ICalendarError):
    """The RECURRENCE-ID names no occurrence of the event (removed, or never part of it)."""
