"""RSVP: an invitee's answer, recorded on the CalDAV server so that the organizer hears of it.

docs/design.md 1.2. Whoever answers (the links in our emails, or a mail client's own buttons
through :mod:`invitations.inbound`), the answer takes one path, :func:`rsvp_answer_record`.
A real sabre/dav server tells the organizer nothing when someone writes a PARTSTAT into the
organizer's copy (docs/messages-and-caldav.md), so the organizer hears of each answer exactly
once, by one of two routes (:class:`OrganizerNotice`):

- **server**: when the authentication lets Convoke act as the attendee (La Suite's API key,
  :func:`calendars.providers.caldav.acts_for_users`), the server schedules by itself
  (:func:`~calendars.providers.caldav.server_schedules`), and the attendee, a user of the
  server, has their own copy of the event (found through their principal), the answer is
  written there, as the attendee: the server sends the organizer its REPLY and updates her
  copy. Convoke sends nothing.
- **email**: otherwise the answer is written into the organizer's copy, and Convoke's own iTIP
  REPLY is stored in the outbox (:func:`invitations.services.replies.organizer_reply_store`),
  which emails the organizer. It is our own message: it goes straight to the outbox, never
  back through the callback's checks.

Either way:

1. the copy is found by UID among the user's calendars and read
   (:func:`calendars.providers.caldav.event_modify`);
2. the answer is checked against that copy: the ORGANIZER is the one the answer is for, the
   address is an ATTENDEE (exact address, never a substring), the event (or the occurrence)
   is neither cancelled nor over;
3. the attendee's PARTSTAT is set on the master (the whole series) or on the override of the
   occurrence (:func:`calendars.ical.attendee_partstat_set`) and the object is PUT back with
   ``If-Match``; on 412 steps 1-3 run again on the new version (bounded);
4. the copy is read back, and the answer counts as recorded only when it carries it;
5. a :class:`~calendars.models.Booking` with this UID gets the answer
   (:func:`calendars.services.booking_attendee_answer_record`), once.

A mail client's own REPLY (``notify_organizer`` false) already reached the organizer: it is
written into the organizer's copy, and nobody sends another. A booking kept on a Google
calendar (Convoke invited the bookee itself because ``GOOGLE_INVITE_ENABLED`` is off) has no
copy on the CalDAV server: the answer goes straight to the booking (steps 2 and 5 only).

The same answer again changes nothing and sends nothing. :func:`rsvp_event_get` is the
read-only half, for the page a GET shows: it never writes anything anywhere.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable

from django.utils import timezone

from calendars.ical import (
    ICalendarError,
    NotAnAttendee,
    OccurrenceNotFound,
    PartStat,
    attendee_partstat_set,
    clean_address,
)
from calendars.models import Booking, Provider, TransitionSource, User
from calendars.providers import ProviderError, ProviderNotConfigured, caldav
from calendars.services import booking_attendee_answer_record, booking_event_body
from invitations.rsvp_checks import (
    OrganizerNotice,
    RsvpError,
    RsvpEvent,
    RsvpEventGone,
    RsvpEventOver,
    RsvpNotAttendee,
    RsvpNotConfigured,
    RsvpOutcome,
    RsvpUnavailable,
    answered,
    copy_fits,
    event_checked,
)
from invitations.services.replies import organizer_reply_store

logger = logging.getLogger(__name__)

__all__ = [
    "OrganizerNotice",
    "Preferences",
    "RsvpError",
    "RsvpEvent",
    "RsvpEventGone",
    "RsvpEventOver",
    "RsvpNotAttendee",
    "RsvpNotConfigured",
    "RsvpOutcome",
    "RsvpUnavailable",
    "rsvp_answer_record",
    "rsvp_event_get",
    "rsvp_preferences",
]


@dataclasses.dataclass(frozen=True)
class Preferences:
    language: str | None
    time_zone: str | None


def rsvp_preferences(*, attendee: str, uid: str) -> Preferences:
    """The invitee's language and time zone: their account's, else the booking's, else
    unknown (the page then follows the browser and the event's own zone). One or two
    queries."""
    user = User.objects.filter(email__iexact=attendee).only("language", "time_zone").first()
    if user is not None:
        return Preferences(language=user.language, time_zone=user.time_zone)
    booking = (
        Booking.objects.filter(ical_uid=uid, attendee_email__iexact=attendee)
        .only("attendee_language", "attendee_time_zone")
        .first()
    )
    if booking is not None:
        return Preferences(language=booking.attendee_language, time_zone=booking.attendee_time_zone)
    return Preferences(language=None, time_zone=None)


# --- Reading ----------------------------------------------------------------------------------


def _provider_call[T](operation: str, call: Callable[[], T]) -> T:
    """Run one CalDAV call; map the adapter's errors to ours (chained)."""
    try:
        return call()
    except caldav.CalDAVNotFound as exc:
        raise RsvpEventGone("no such event or calendar") from exc
    except ProviderNotConfigured as exc:
        logger.error("rsvp %s impossible: CalDAV is not configured (%s)", operation, exc)
        raise RsvpNotConfigured("CalDAV is not configured") from exc
    except ProviderError as exc:
        logger.warning("rsvp %s failed reason=%s", operation, exc.reason)
        raise RsvpUnavailable("the CalDAV server failed") from exc


def rsvp_event_get(
    *,
    uid: str,
    organizer: str,
    attendee: str,
    recurrence_id: str | None,
    now: dt.datetime | None = None,
) -> RsvpEvent:
    """The event as the organizer's CalDAV server stores it, with the attendee's current
    answer. Reads only: nothing is written, on the server or here.

    Raises :class:`RsvpEventGone`, :class:`RsvpEventOver`, :class:`RsvpNotAttendee` or
    :class:`RsvpUnavailable`.
    """
    organizer, attendee = clean_address(organizer), clean_address(attendee)
    kept_here = _google_booking_copy(uid)
    if kept_here is not None:
        return event_checked(
            kept_here,
            uid=uid,
            organizer=organizer,
            attendee=attendee,
            recurrence_id=recurrence_id,
            now=now or timezone.now(),
        )
    found = _provider_call("read", lambda: caldav.event_find(user_email=organizer, uid=uid))
    if found is None:
        raise RsvpEventGone("no event with this UID in the organizer's calendars")
    return event_checked(
        found.data,
        uid=uid,
        organizer=organizer,
        attendee=attendee,
        recurrence_id=recurrence_id,
        now=now or timezone.now(),
    )


# --- Recording --------------------------------------------------------------------------------


def rsvp_answer_record(
    *,
    uid: str,
    organizer: str,
    attendee: str,
    recurrence_id: str | None,
    partstat: PartStat,
    source: TransitionSource,
    notify_organizer: bool = True,
    now: dt.datetime | None = None,
) -> RsvpOutcome:
    """Record ``attendee``'s answer on the organizer's event (see the module docstring).

    ``recurrence_id`` (a :func:`calendars.ical.recurrence_key`) answers for one occurrence,
    None for the whole event. ``notify_organizer`` false leaves out Convoke's own REPLY (the
    organizer already has the attendee's). Raises :class:`RsvpEventGone`,
    :class:`RsvpEventOver`, :class:`RsvpNotAttendee` or :class:`RsvpUnavailable` (then
    nothing was written).
    """
    organizer, attendee = clean_address(organizer), clean_address(attendee)
    answer = PartStat(partstat)
    moment = now or timezone.now()
    kept_here = _google_booking_copy(uid)
    if kept_here is not None:
        before = event_checked(
            kept_here,
            uid=uid,
            organizer=organizer,
            attendee=attendee,
            recurrence_id=recurrence_id,
            now=moment,
        )
        changed = _booking_answer(uid=uid, attendee=attendee, partstat=answer, source=source)
        logger.info(
            "rsvp answer recorded on a Google booking partstat=%s changed=%s", answer, changed
        )
        return RsvpOutcome(
            event=dataclasses.replace(before, partstat=str(answer)),
            partstat=answer,
            changed=changed,
        )

    def change(data: bytes) -> bytes | None:
        # Checked again on every version read: the organizer may have removed the attendee
        # or cancelled the occurrence between two attempts.
        event_checked(
            data,
            uid=uid,
            organizer=organizer,
            attendee=attendee,
            recurrence_id=recurrence_id,
            now=moment,
        )
        if answered(data, attendee=attendee, recurrence_id=recurrence_id, partstat=answer):
            return None
        try:
            return attendee_partstat_set(
                data, attendee=attendee, partstat=answer, recurrence_id=recurrence_id
            )
        except NotAnAttendee as exc:
            raise RsvpNotAttendee("not an attendee") from exc
        except OccurrenceNotFound as exc:
            raise RsvpEventGone("the occurrence is not part of the event") from exc
        except ICalendarError as exc:
            raise RsvpUnavailable("the stored event cannot be changed") from exc

    result = (
        _attendee_copy_write(uid=uid, organizer=organizer, attendee=attendee, change=change)
        if notify_organizer
        else None
    )
    notice = OrganizerNotice.SERVER
    if result is None:
        result = _provider_call(
            "write", lambda: caldav.event_modify(user_email=organizer, uid=uid, change=change)
        )
        notice = OrganizerNotice.EMAIL if notify_organizer else OrganizerNotice.NONE
    try:
        stored = event_checked(
            result.after.data,
            uid=uid,
            organizer=organizer,
            attendee=attendee,
            recurrence_id=recurrence_id,
            now=moment,
        )
        kept = answered(
            result.after.data, attendee=attendee, recurrence_id=recurrence_id, partstat=answer
        )
    except RsvpError as exc:
        logger.warning("rsvp answer not found on read-back reason=%s", type(exc).__name__)
        raise RsvpUnavailable("the server's copy does not show the answer") from exc
    if not kept:
        logger.warning("rsvp answer not kept by the server attempts=%d", result.attempts)
        raise RsvpUnavailable("the server's copy does not show the answer")

    _booking_answer(uid=uid, attendee=attendee, partstat=answer, source=source)
    reply_id = None
    if not result.changed:
        notice = OrganizerNotice.NONE
    elif notice is OrganizerNotice.EMAIL:
        reply_id = organizer_reply_store(
            data=result.after.data,
            uid=uid,
            organizer=organizer,
            attendee=attendee,
            recurrence_id=recurrence_id,
            now=moment,
        )
        if reply_id is None:
            notice = OrganizerNotice.NONE
    logger.info(
        "rsvp answer recorded partstat=%s source=%s changed=%s occurrence=%s attempts=%d notice=%s",
        answer,
        source,
        result.changed,
        recurrence_id is not None,
        result.attempts,
        notice,
    )
    return RsvpOutcome(
        event=stored,
        partstat=answer,
        changed=result.changed,
        notice=notice,
        reply_delivery_id=reply_id,
    )


class _NotTheirCopy(Exception):
    """The attendee's calendar holds this UID, but not as an invitation from this organizer
    to them: not a copy the server would tell the organizer about."""


def _attendee_copy_write(
    *,
    uid: str,
    organizer: str,
    attendee: str,
    change: Callable[[bytes], bytes | None],
) -> caldav.ModifyResult | None:
    """The answer written into the attendee's own copy, as the attendee, when the CalDAV
    server will then tell the organizer itself (docs/design.md 1.2); None when it cannot be
    (Convoke may not act as the attendee, the server does not schedule, the attendee is not
    one of its users or has no copy): then nothing was written.

    Raises what :func:`rsvp_answer_record` raises; an unreachable server is
    :class:`RsvpUnavailable` (a write may have happened: the organizer's copy is not touched).
    """
    if not caldav.acts_for_users():
        return None

    def change_theirs(data: bytes) -> bytes | None:
        if not copy_fits(data, organizer=organizer, attendee=attendee):
            raise _NotTheirCopy
        return change(data)

    try:
        if not caldav.server_schedules(user_email=organizer):
            return None
        return caldav.event_modify(user_email=attendee, uid=uid, change=change_theirs)
    except (caldav.CalDAVNotFound, _NotTheirCopy):
        return None  # no principal, no calendar or no copy of theirs: nothing was written
    except caldav.CalDAVRefused as exc:
        # Refused (rights, no strong ETag): nothing was written; the organizer's copy is.
        logger.info("rsvp attendee copy not writable reason=%s", exc.reason)
        return None
    except ProviderNotConfigured as exc:
        raise RsvpNotConfigured("CalDAV is not configured") from exc
    except ProviderError as exc:
        logger.warning("rsvp write to the attendee's copy failed reason=%s", exc.reason)
        raise RsvpUnavailable("the CalDAV server failed") from exc


def _booking_answer(
    *, uid: str, attendee: str, partstat: PartStat, source: TransitionSource
) -> bool:
    """docs/design.md 1.3: the bookee's answer reaches the booking (declined: the booking is).
    Returns whether the booking recorded something new."""
    booking_id = Booking.objects.filter(ical_uid=uid).values_list("pk", flat=True).first()
    if booking_id is None:
        return False
    recorded = booking_attendee_answer_record(
        booking_id=booking_id, attendee_email=attendee, partstat=partstat, source=source
    )
    logger.info("rsvp answer for a booking booking=%s recorded=%s", booking_id, recorded)
    return recorded


def _google_booking_copy(uid: str) -> bytes | None:
    """The event of a booking on a Google calendar, as Convoke keeps it (there is no CalDAV
    copy to read); None when ``uid`` is not such a booking. A declined or cancelled booking
    reads as a cancelled event."""
    booking = (
        Booking.objects.select_related("organizer")
        .filter(ical_uid=uid, calendar__provider=Provider.GOOGLE)
        .first()
    )
    if booking is None:
        return None
    return booking_event_body(booking)
