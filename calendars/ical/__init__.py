"""iCalendar in and out: the one package that imports ``icalendar`` (docs/style.md rule 6).

:func:`parse_itip` turns an iTIP body (RFC 5546) into typed dataclasses (:mod:`.types`);
:func:`build_attachment` turns a parsed message back into the bytes of the ``text/calendar``
part of an email (RFC 6047); :func:`booking_event_build` writes one booking's event;
:func:`attendee_partstat_set` and :func:`reply_build` edit a stored object for an answer.
Time zones are resolved by :mod:`.zones` (a sender's own VTIMEZONE becomes a bounded table,
:mod:`.vtimezone`). Every problem with the input is one :class:`ICalendarError`; what asks
for more than the budgets of :mod:`.budgets` allow is a :class:`BudgetExceeded` naming the
limit, and recurrences are evaluated under a budget of work (:mod:`.rules`).
"""

from calendars.ical.attachment import build_attachment
from calendars.ical.booking import booking_event_build
from calendars.ical.edit import (
    attendee_partstat_set,
    occurrence_event,
    recurrence_key,
    reply_build,
)
from calendars.ical.parse import parse_itip
from calendars.ical.rules import recurrence_rule_from_parts
from calendars.ical.types import (
    ITIP_EMAIL_METHODS,
    Attendee,
    BudgetExceeded,
    Event,
    EventStatus,
    ICalendarError,
    ITipMessage,
    Method,
    NotAnAttendee,
    OccurrenceNotFound,
    Organizer,
    PartStat,
    RecurrenceRule,
    clean_address,
)
from calendars.ical.zones import iana_name

__all__ = [
    "ITIP_EMAIL_METHODS",
    "Attendee",
    "BudgetExceeded",
    "Event",
    "EventStatus",
    "ICalendarError",
    "ITipMessage",
    "Method",
    "NotAnAttendee",
    "OccurrenceNotFound",
    "Organizer",
    "PartStat",
    "RecurrenceRule",
    "attendee_partstat_set",
    "booking_event_build",
    "build_attachment",
    "clean_address",
    "iana_name",
    "occurrence_event",
    "parse_itip",
    "recurrence_key",
    "recurrence_rule_from_parts",
    "reply_build",
]
