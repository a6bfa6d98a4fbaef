"""The booking state machine, and the moves everyone asks for (docs/architecture.md).

Every change of a booking's status goes through :func:`booking_transition`, whoever asks for
it (API, email link, Google push, CalDAV reply, admin): it locks the row, refuses illegal
moves, records a :class:`~calendars.models.BookingTransition`, and is idempotent — asking for
the status the booking already has changes nothing and records nothing.

:func:`booking_confirm`, :func:`booking_deny` and :func:`booking_cancel` build on it: each
one that changes a booking marks it to be published and enqueues, after the commit, the
publish that makes its calendar (Google or CalDAV) reflect the new status
(:mod:`calendars.services.publish`), so applying a transition twice calls the provider once.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from calendars.ical import PartStat
from calendars.models import (
    Booking,
    BookingStatus,
    BookingTransition,
    Calendar,
    PublishState,
    TransitionSource,
)
from calendars.services.publish import booking_publish_enqueue

logger = logging.getLogger(__name__)

# Which statuses a booking may move to from each status (docs/design.md 1.3).
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    BookingStatus.REQUESTED: frozenset(
        {BookingStatus.BOOKED, BookingStatus.DECLINED, BookingStatus.CANCELLED}
    ),
    BookingStatus.BOOKED: frozenset({BookingStatus.DECLINED, BookingStatus.CANCELLED}),
    BookingStatus.DECLINED: frozenset(),
    BookingStatus.CANCELLED: frozenset(),
}


class BookingTransitionError(Exception):
    """The booking cannot move from its current status to the one asked for."""

    def __init__(self, *, booking_id: int, from_status: str, to_status: str) -> None:
        super().__init__(f"booking {booking_id} cannot go from {from_status} to {to_status}")
        self.booking_id = booking_id
        self.from_status = from_status
        self.to_status = to_status


@dataclass(frozen=True)
class TransitionResult:
    booking: Booking
    changed: bool
    from_status: str


def booking_transition(
    *,
    booking_id: int,
    to_status: BookingStatus | str,
    source: TransitionSource | str,
    detail: dict[str, Any] | None = None,
) -> TransitionResult:
    """Move a booking to ``to_status`` under a row lock and record the transition.

    Idempotent: when the booking already has ``to_status`` nothing is written and
    ``changed`` is false. Raises :class:`BookingTransitionError` for a move that
    :data:`ALLOWED_TRANSITIONS` does not permit, and ``Booking.DoesNotExist``.
    """
    to_status = BookingStatus(to_status)
    source = TransitionSource(source)
    with transaction.atomic():
        booking = Booking.objects.select_for_update().get(pk=booking_id)
        from_status = booking.status
        if from_status == to_status:
            return TransitionResult(booking=booking, changed=False, from_status=from_status)
        if to_status not in ALLOWED_TRANSITIONS[from_status]:
            raise BookingTransitionError(
                booking_id=booking_id, from_status=from_status, to_status=to_status
            )
        booking.status = to_status
        update_fields = ["status", "updated_at"]
        if not ALLOWED_TRANSITIONS[to_status] and booking.overlaps:
            # A booking that is over frees its slot: it overlaps nothing any more.
            booking.overlaps = False
            update_fields.append("overlaps")
        booking.save(update_fields=update_fields)
        BookingTransition.objects.create(
            booking=booking,
            from_status=from_status,
            to_status=to_status,
            source=source,
            detail=detail or {},
        )
    logger.info(
        "booking transition booking=%s from=%s to=%s source=%s",
        booking_id,
        from_status,
        to_status,
        source,
    )
    return TransitionResult(booking=booking, changed=True, from_status=from_status)


def booking_attendee_answer_record(
    *,
    booking_id: int,
    attendee_email: str,
    partstat: PartStat | str,
    source: TransitionSource | str,
) -> bool:
    """Apply the bookee's answer to their invitation (a PARTSTAT) to the booking.

    DECLINED declines the booking through :func:`booking_deny` (so the provider's event goes
    too); any other answer (ACCEPTED, TENTATIVE, ...) is recorded on
    the booking and as a transition without a change of status — the subscriber still
    decides. An answer from someone other than the booking's attendee, or the same answer
    again, changes nothing. Returns whether anything was recorded.
    """
    try:
        answer = PartStat(str(partstat).strip().upper())
    except ValueError:
        raise ValueError(f"unknown PARTSTAT {partstat!r}") from None
    source = TransitionSource(source)
    with transaction.atomic():
        booking = Booking.objects.select_for_update().get(pk=booking_id)
        if booking.attendee_email.strip().lower() != attendee_email.strip().lower():
            logger.info("booking answer ignored booking=%s reason=not-the-attendee", booking_id)
            return False
        if booking.attendee_partstat == answer:
            return False
        booking.attendee_partstat = answer.value
        booking.save(update_fields=["attendee_partstat", "updated_at"])
        if answer == PartStat.DECLINED and ALLOWED_TRANSITIONS[booking.status]:
            # Declining also removes the event at the provider, like any other decline.
            booking_deny(booking_id=booking_id, source=source, detail={"partstat": answer.value})
        else:
            BookingTransition.objects.create(
                booking=booking,
                from_status=booking.status,
                to_status=booking.status,
                source=source,
                detail={"partstat": answer.value},
            )
    return True


def booking_confirm(
    *,
    booking_id: int,
    source: TransitionSource | str,
    detail: dict[str, Any] | None = None,
) -> TransitionResult:
    """The subscriber confirms: requested -> booked; the calendar event is confirmed."""
    return _booking_move(
        booking_id=booking_id, to_status=BookingStatus.BOOKED, source=source, detail=detail
    )


def booking_deny(
    *,
    booking_id: int,
    source: TransitionSource | str,
    detail: dict[str, Any] | None = None,
) -> TransitionResult:
    """The subscriber (or the bookee, from Google) declines: -> declined; the event goes."""
    return _booking_move(
        booking_id=booking_id, to_status=BookingStatus.DECLINED, source=source, detail=detail
    )


def booking_cancel(
    *,
    booking_id: int,
    source: TransitionSource | str,
    detail: dict[str, Any] | None = None,
) -> TransitionResult:
    """The booking is called off (or its event was deleted in Google): -> cancelled."""
    return _booking_move(
        booking_id=booking_id, to_status=BookingStatus.CANCELLED, source=source, detail=detail
    )


def _booking_move(
    *,
    booking_id: int,
    to_status: BookingStatus,
    source: TransitionSource | str,
    detail: dict[str, Any] | None,
) -> TransitionResult:
    with transaction.atomic():
        result = booking_transition(
            booking_id=booking_id, to_status=to_status, source=source, detail=detail
        )
        if result.changed:
            booking_publish_enqueue(booking_ids=[booking_id])
            result.booking.publish_state = PublishState.PENDING
            result.booking.publish_error = ""
    return result


def booking_move_record(
    *,
    booking_id: int,
    start: dt.datetime,
    end: dt.datetime,
    source: TransitionSource | str,
) -> bool:
    """The booking's event moved in its calendar (changed in Google): the booking follows.

    The calendar is the truth, so the new time is kept even when it overlaps another active
    booking of the calendar; that overlap is recorded for operators (``Booking.overlaps``,
    the other bookings named in the transition's detail, a warning in the log), never
    silently dropped. The move is recorded as a transition without a change of status, whose
    detail holds the old and the new time. Runs under the calendar's row lock, the lock every
    booking request of the calendar queues on, so a request never races a move. Only active
    bookings move; the same time again changes nothing. Returns whether the booking moved.
    Raises ``Booking.DoesNotExist``.
    """
    if end <= start:
        raise ValueError("a booking ends after it starts")
    with transaction.atomic():
        calendar_id = Booking.objects.values_list("calendar_id", flat=True).get(pk=booking_id)
        Calendar.objects.select_for_update().only("pk").get(pk=calendar_id)
        booking = Booking.objects.select_for_update().get(pk=booking_id)
        if booking.status not in (BookingStatus.REQUESTED, BookingStatus.BOOKED):
            return False
        if (booking.start, booking.end) == (start, end):
            return False
        overlapping = sorted(
            Booking.objects.active()
            .filter(calendar_id=calendar_id, start__lt=end, end__gt=start)
            .exclude(pk=booking_id)
            .values_list("pk", flat=True)
        )
        detail: dict[str, Any] = {
            "google_action": "move",
            "from": {"start": booking.start.isoformat(), "end": booking.end.isoformat()},
            "to": {"start": start.isoformat(), "end": end.isoformat()},
        }
        if overlapping:
            detail["overlaps"] = overlapping
        Booking.objects.filter(pk=booking_id).update(
            start=start, end=end, overlaps=bool(overlapping), updated_at=timezone.now()
        )
        BookingTransition.objects.create(
            booking=booking,
            from_status=booking.status,
            to_status=booking.status,
            source=TransitionSource(source),
            detail=detail,
        )
    if overlapping:
        logger.warning(
            "booking moved onto other bookings booking=%s overlaps=%s",
            booking_id,
            ",".join(str(pk) for pk in overlapping),
        )
    else:
        logger.info("booking moved booking=%s source=%s", booking_id, source)
    return True


def booking_publish_retry(*, booking_ids: list[int]) -> int:
    """Operators: publish again the bookings not published yet (failed or stuck).

    Returns how many were scheduled. Used by the admin action; safe to repeat.
    """
    with transaction.atomic():
        ids = list(
            Booking.objects.filter(pk__in=booking_ids)
            .exclude(publish_state=PublishState.PUBLISHED)
            .values_list("pk", flat=True)
        )
        booking_publish_enqueue(booking_ids=ids)
    logger.info("booking publish retry scheduled count=%d", len(ids))
    return len(ids)


def booking_republish(
    *,
    booking_id: int,
    source: TransitionSource | str,
    detail: dict[str, Any] | None = None,
) -> Booking:
    """Operators: publish one booking to its calendar again now, whatever its state.

    Records the request as a transition without a change of status (``detail`` gets
    ``action: republish``) and schedules the same idempotent publish as every booking
    change, after the commit. Raises ``Booking.DoesNotExist``.
    """
    with transaction.atomic():
        booking = Booking.objects.select_for_update().get(pk=booking_id)
        BookingTransition.objects.create(
            booking=booking,
            from_status=booking.status,
            to_status=booking.status,
            source=TransitionSource(source),
            detail={
                **(detail or {}),
                "action": "republish",
                "publish_state": booking.publish_state,
            },
        )
        booking_publish_enqueue(booking_ids=[booking_id])
        booking.publish_state = PublishState.PENDING
        booking.publish_error = ""
    logger.info("booking republish requested booking=%s source=%s", booking_id, source)
    return booking
