"""What RSVP knows of a stored event, and the reasons an answer cannot be recorded.

Pure functions of a stored calendar object's bytes (no call to any server, no query), used
by :mod:`invitations.rsvp` on every version it reads: :func:`event_checked` (the event or
occurrence as the answer sees it, or why it cannot be answered), :func:`answered` (whether
the copy already carries the answer) and :func:`copy_fits` (whether an attendee's copy is
the organizer's invitation to them).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging

from calendars.ical import (
    Event,
    EventStatus,
    ICalendarError,
    OccurrenceNotFound,
    PartStat,
    occurrence_event,
    parse_itip,
)
from invitations.rendering.occurrences import last_end

logger = logging.getLogger(__name__)


class RsvpError(Exception):
    """The answer cannot be shown or recorded; the subclass says why."""


class RsvpEventGone(RsvpError):
    """No event with this UID in the organizer's calendars, or it is cancelled, or the
    occurrence answered is no longer part of it."""


class RsvpEventOver(RsvpError):
    """The event (or the occurrence answered) has ended."""


class RsvpNotAttendee(RsvpError):
    """The address is not an attendee of the event."""


class RsvpUnavailable(RsvpError):
    """The CalDAV server cannot be reached or refused the change; nothing was recorded."""


class RsvpNotConfigured(RsvpUnavailable):
    """No CalDAV server is configured: answers cannot be recorded at all (trying again
    cannot help)."""


class OrganizerNotice(enum.StrEnum):
    """How the organizer hears of a recorded answer."""

    SERVER = "server"  # the attendee's own copy was written: the CalDAV server sends the REPLY
    EMAIL = "email"  # the organizer's copy was written: Convoke's REPLY is in the outbox
    NONE = "none"  # nobody tells: nothing changed, or the organizer already has the answer


@dataclasses.dataclass(frozen=True)
class RsvpEvent:
    """What the RSVP page shows: the event (or occurrence) and the attendee's answer on the
    server. ``occurrence`` is the RECURRENCE-ID answered for, None for the whole event."""

    uid: str
    event: Event
    occurrence: dt.date | dt.datetime | None
    organizer_address: str
    organizer_name: str
    attendee: str
    attendee_name: str
    partstat: str


@dataclasses.dataclass(frozen=True)
class RsvpOutcome:
    """``changed``: a copy on the server was written; ``notice``: how the organizer hears of
    it; ``reply_delivery_id``: the delivery of Convoke's REPLY (``notice`` email only)."""

    event: RsvpEvent
    partstat: PartStat
    changed: bool
    notice: OrganizerNotice = OrganizerNotice.NONE
    reply_delivery_id: int | None = None


# --- Reading a stored copy ---------------------------------------------------------------------


def event_checked(
    data: bytes,
    *,
    uid: str,
    organizer: str,
    attendee: str,
    recurrence_id: str | None,
    now: dt.datetime,
) -> RsvpEvent:
    """The event (or occurrence) of ``data`` as the answer sees it, or the reason it cannot
    be answered (:class:`RsvpEventGone`, :class:`RsvpEventOver`, :class:`RsvpNotAttendee`)."""
    try:
        message = parse_itip(data)
        event = occurrence_event(data, recurrence_id=recurrence_id)
    except OccurrenceNotFound as exc:
        raise RsvpEventGone("the occurrence is not part of the event") from exc
    except ICalendarError as exc:
        logger.warning("rsvp stored event unreadable reason=%s", type(exc).__name__)
        raise RsvpUnavailable("the stored event cannot be read") from exc
    if event.uid != uid or event.organizer is None or event.organizer.address != organizer:
        # Another organizer's event copied into this calendar (this user is one of its
        # attendees): not the event the link was made for.
        raise RsvpEventGone("the event in this calendar has another organizer")
    if event.status == EventStatus.CANCELLED or (
        message.master and message.master.status == EventStatus.CANCELLED
    ):
        raise RsvpEventGone("the event is cancelled")
    attendee_entry = event.attendee(attendee)
    if attendee_entry is None:
        raise RsvpNotAttendee("not an attendee")
    ended = last_end(message.events) if recurrence_id is None else last_end([event])
    if ended is not None and ended <= now:
        raise RsvpEventOver("the event is over")
    return RsvpEvent(
        uid=uid,
        event=event,
        occurrence=event.recurrence_id if recurrence_id is not None else None,
        organizer_address=event.organizer.address,
        organizer_name=event.organizer.name,
        attendee=attendee,
        attendee_name=attendee_entry.name,
        partstat=str(attendee_entry.partstat),
    )


def answered(data: bytes, *, attendee: str, recurrence_id: str | None, partstat: str) -> bool:
    """Whether the stored copy already carries the answer where it applies: the occurrence,
    or the master and every override that lists the attendee."""
    if recurrence_id is not None:
        entry = occurrence_event(data, recurrence_id=recurrence_id).attendee(attendee)
        return entry is not None and str(entry.partstat) == partstat
    entries = [e.attendee(attendee) for e in parse_itip(data).events]
    listed = [entry for entry in entries if entry is not None]
    return bool(listed) and all(str(entry.partstat) == partstat for entry in listed)


def copy_fits(data: bytes, *, organizer: str, attendee: str) -> bool:
    """Whether ``data`` is ``organizer``'s event with ``attendee`` among its attendees."""
    try:
        message = parse_itip(data)
    except ICalendarError:
        return False
    event = message.primary
    return (
        event.organizer is not None
        and event.organizer.address == organizer
        and any(e.attendee(attendee) is not None for e in message.events)
    )
