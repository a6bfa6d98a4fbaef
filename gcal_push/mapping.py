"""What a changed Google event means for its booking (docs/architecture.md, "bookings").

- the bookee's ``responseStatus`` ``declined``: booking declined, the event deleted;
- the bookee ``accepted`` (or ``tentative``): the answer recorded, no change of status;
- the subscriber's own entry (``self: true``) ``accepted``: booked, the event patched to
  confirmed with ``sendUpdates=all``;
- the subscriber's own entry ``declined``: declined, the event deleted with ``sendUpdates=all``;
- the event cancelled (deleted in Google): booking cancelled.

:func:`booking_actions` decides (a pure function of the booking and the event);
:func:`booking_action_apply` carries one action out through the booking service, which
locks the booking and is idempotent, so applying the same change twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from calendars import services as booking_services
from calendars.ical import PartStat
from calendars.models import Booking, BookingStatus, TransitionSource
from calendars.providers import google

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
        )


class BookingAction(StrEnum):
    CANCEL = "cancel"
    # The bookee declined: declined, event deleted.
    BOOKEE_DECLINED = "bookee_declined"
    # The subscriber confirmed or denied from Google Calendar.
    CONFIRM = "confirm"
    DENY = "deny"
    RECORD_ACCEPTED = "record_accepted"
    RECORD_TENTATIVE = "record_tentative"


_TERMINAL = frozenset({BookingStatus.DECLINED, BookingStatus.CANCELLED})


def booking_actions(*, booking: Booking, change: EventChange) -> list[BookingAction]:
    """The actions that bring ``booking`` in line with ``change``; empty when it already is."""
    if booking.status in _TERMINAL:
        return []
    if change.cancelled:
        return [BookingAction.CANCEL]
    bookee = change.responses.get(booking.attendee_email.strip().lower(), "")
    if bookee == google.ResponseStatus.DECLINED:
        return [BookingAction.BOOKEE_DECLINED]
    if change.self_response == google.ResponseStatus.DECLINED:
        return [BookingAction.DENY]
    actions: list[BookingAction] = []
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


def _known(value: str) -> bool:
    return value in google.ResponseStatus.__members__.values()


def booking_action_apply(*, booking: Booking, action: BookingAction) -> bool:
    """Carry one action out through the booking service. Returns whether anything changed.

    The booking service locks the booking, refuses illegal moves and is idempotent; its
    provider side effects (patch, delete) are queued to run after the commit.
    """
    source = TransitionSource.GOOGLE_PUSH
    detail = {"google_action": str(action)}
    try:
        if action == BookingAction.CANCEL:
            return booking_services.booking_cancel(
                booking_id=booking.pk, source=source, detail=detail
            ).changed
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
        # A declined answer declines through booking_deny, whose provider sync deletes the
        # event.
        return booking_services.booking_attendee_answer_record(
            booking_id=booking.pk,
            attendee_email=booking.attendee_email,
            partstat=partstat,
            source=source,
        )
    except booking_services.BookingTransitionError:
        # The booking moved meanwhile (cancelled through the API, say): nothing to apply.
        return False
