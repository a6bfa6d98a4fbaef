"""What a Google event means for its booking (docs/design.md 1.3, docs/architecture.md).

- the event cancelled (deleted in Google): booking cancelled, and nothing more to publish
  (Google already shows it deleted); but when the deleted event still shows that the
  bookee, or the subscriber, declined it first (details of a deleted event are kept on the
  organizer's calendar, ``showDeleted``), the booking is declined, as the decline came first;
- the event moved (its start or end changed in Google): the booking follows, recorded as a
  transition without a change of status; a move onto another active booking is kept and
  recorded for operators;
- the bookee's ``responseStatus`` ``declined``: booking declined, the event deleted;
- the bookee ``accepted`` (or ``tentative``): the answer recorded, no change of status;
- the subscriber's own entry (the organizer's, ``self: true``) ``accepted``: booked, the event
  patched to confirmed with ``sendUpdates=all``;
- the subscriber's own entry ``declined``: declined, the event deleted with ``sendUpdates=all``.

:func:`booking_actions` decides (a pure function of the booking and the event);
:func:`booking_event_apply` applies one event as Google returned it — from a listing of the
sync, or from a read of the publish or of a decision (the core's ``google_event_apply``
hook): it records what was seen (ETag, status, ``updated``), ignores a state older than the
one seen last, and carries each action out through the booking services, which lock the
booking and are idempotent, so applying the same event twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from django.db import transaction

from calendars import services as booking_services
from calendars.ical import PartStat
from calendars.models import Booking, BookingStatus, TransitionSource
from calendars.providers import google

logger = logging.getLogger(__name__)

# The bookee's answers that are recorded on the booking, as iCalendar PARTSTATs.
_RECORDED_ANSWERS = {
    google.ResponseStatus.ACCEPTED: PartStat.ACCEPTED,
    google.ResponseStatus.TENTATIVE: PartStat.TENTATIVE,
}


@dataclass(frozen=True)
class EventChange:
    """The parts of a changed event that bookings depend on."""

    event_id: str
    cancelled: bool
    # responseStatus of the calendar owner's own attendee entry (``self: true``), if any.
    self_response: str = ""
    # responseStatus by lower-cased attendee email, other than the owner's own entry.
    responses: Mapping[str, str] = field(default_factory=dict)
    # The event's time (timed events only; an all-day event is not a booking's shape).
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    etag: str = ""
    status: str = ""
    updated: dt.datetime | None = None

    @classmethod
    def from_event(cls, event: google.Event) -> EventChange:
        """From the adapter's event; a deleted event may carry only ``id`` and ``status``."""
        self_response = ""
        responses: dict[str, str] = {}
        for attendee in event.attendees:
            if attendee.is_self:
                self_response = str(attendee.response_status)
                continue
            email = attendee.email.strip().lower()
            if email:
                responses[email] = str(attendee.response_status)
        return cls(
            event_id=event.id,
            cancelled=event.is_cancelled,
            self_response=self_response,
            responses=responses,
            start=event.start,
            end=event.end,
            etag=event.etag,
            status=str(event.status),
            updated=event.updated,
        )


class BookingAction(StrEnum):
    CANCEL = "cancel"
    # The bookee declined: declined, event deleted.
    BOOKEE_DECLINED = "bookee_declined"
    # The subscriber confirmed or denied from Google Calendar.
    CONFIRM = "confirm"
    DENY = "deny"
    # The event's start or end changed in Google.
    MOVE = "move"
    RECORD_ACCEPTED = "record_accepted"
    RECORD_TENTATIVE = "record_tentative"


_TERMINAL = frozenset({BookingStatus.DECLINED, BookingStatus.CANCELLED})


def booking_actions(*, booking: Booking, change: EventChange) -> list[BookingAction]:
    """The actions that bring ``booking`` in line with ``change``; empty when it already is."""
    if booking.status in _TERMINAL:
        return []
    bookee = change.responses.get(booking.attendee_email.strip().lower(), "")
    if change.cancelled:
        # Nobody answers a deleted event: a decline it still shows came before the deletion.
        if bookee == google.ResponseStatus.DECLINED:
            return [BookingAction.BOOKEE_DECLINED]
        if change.self_response == google.ResponseStatus.DECLINED:
            return [BookingAction.DENY]
        return [BookingAction.CANCEL]
    actions: list[BookingAction] = []
    if _moved(booking, change):
        actions.append(BookingAction.MOVE)
    if bookee == google.ResponseStatus.DECLINED:
        return [*actions, BookingAction.BOOKEE_DECLINED]
    if change.self_response == google.ResponseStatus.DECLINED:
        return [*actions, BookingAction.DENY]
    if (
        change.self_response == google.ResponseStatus.ACCEPTED
        and booking.status == BookingStatus.REQUESTED
    ):
        actions.append(BookingAction.CONFIRM)
    partstat = _RECORDED_ANSWERS.get(google.ResponseStatus(bookee)) if _known(bookee) else None
    if partstat and booking.attendee_partstat != partstat:
        actions.append(
            BookingAction.RECORD_ACCEPTED
            if partstat == PartStat.ACCEPTED
            else BookingAction.RECORD_TENTATIVE
        )
    return actions


def _moved(booking: Booking, change: EventChange) -> bool:
    if change.start is None or change.end is None or change.end <= change.start:
        return False
    return (change.start, change.end) != (booking.start, booking.end)


def _known(value: str) -> bool:
    return value in google.ResponseStatus.__members__.values()


def booking_event_apply(*, booking_id: int, event: google.Event) -> bool:
    """Apply one event, as Google returned it, to its booking. Returns whether the booking
    changed (its status, time or recorded answer).

    In one transaction, under the booking's row lock: a state older than the one last seen
    (by its ``updated`` time) is ignored; what was seen is recorded (ETag, status,
    ``updated``: the next write to Google sends that ETag as ``If-Match``); then each action
    of :func:`booking_actions` runs through the booking services, whose publish is queued to
    run after the commit. Raises ``Booking.DoesNotExist``.
    """
    change = EventChange.from_event(event)
    with transaction.atomic():
        booking = Booking.objects.select_for_update().get(pk=booking_id)
        if _stale(booking, change):
            logger.info("google event state older than seen ignored booking=%s", booking_id)
            return False
        _seen_record(booking, change)
        changed = False
        for action in booking_actions(booking=booking, change=change):
            changed = booking_action_apply(booking=booking, action=action, change=change) or changed
    return changed


def _stale(booking: Booking, change: EventChange) -> bool:
    return bool(
        change.updated and booking.google_updated and change.updated < booking.google_updated
    )


def _seen_record(booking: Booking, change: EventChange) -> None:
    seen = {
        "google_etag": change.etag or booking.google_etag,
        "google_event_status": change.status or booking.google_event_status,
        "google_updated": change.updated or booking.google_updated,
    }
    if any(getattr(booking, name) != value for name, value in seen.items()):
        Booking.objects.filter(pk=booking.pk).update(**seen)
        for name, value in seen.items():
            setattr(booking, name, value)


def booking_action_apply(
    *, booking: Booking, action: BookingAction, change: EventChange | None = None
) -> bool:
    """Carry one action out through the booking service. Returns whether anything changed.

    The booking service locks the booking, refuses illegal moves and is idempotent; its
    provider side effects (patch, delete) are queued to run after the commit; its publish
    makes no call for an event that Google showed deleted (``google_event_status``).
    """
    source = TransitionSource.GOOGLE_PUSH
    detail = {"google_action": str(action)}
    try:
        if action == BookingAction.CANCEL:
            return booking_services.booking_cancel(
                booking_id=booking.pk, source=source, detail=detail
            ).changed
        if action == BookingAction.MOVE:
            assert change is not None and change.start is not None and change.end is not None
            return booking_services.booking_move_record(
                booking_id=booking.pk, start=change.start, end=change.end, source=source
            )
        if action == BookingAction.CONFIRM:
            return booking_services.booking_confirm(
                booking_id=booking.pk, source=source, detail=detail
            ).changed
        if action == BookingAction.DENY:
            return booking_services.booking_deny(
                booking_id=booking.pk, source=source, detail=detail
            ).changed
        partstat = {
            BookingAction.BOOKEE_DECLINED: PartStat.DECLINED,
            BookingAction.RECORD_ACCEPTED: PartStat.ACCEPTED,
            BookingAction.RECORD_TENTATIVE: PartStat.TENTATIVE,
        }[action]
        # A declined answer declines through booking_deny, whose publish deletes the event
        # (unless Google shows it deleted already).
        return booking_services.booking_attendee_answer_record(
            booking_id=booking.pk,
            attendee_email=booking.attendee_email,
            partstat=partstat,
            source=source,
        )
    except booking_services.BookingTransitionError:
        # The booking moved meanwhile (cancelled through the API, say): nothing to apply.
        return False
