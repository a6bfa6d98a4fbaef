"""Writes on the shared schema: the booking state machine and encrypted-secret rotation.

Every change of a booking's status goes through :func:`booking_transition`, whoever asks for
it (API, email link, Google push, CalDAV reply, admin): it locks the row, refuses illegal
moves, records a :class:`~calendars.models.BookingTransition`, and is idempotent — asking for
the status the booking already has changes nothing and records nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from calendars.models import (
    Booking,
    BookingStatus,
    BookingTransition,
    GoogleAccount,
    TransitionSource,
)

logger = logging.getLogger(__name__)

ROTATION_BATCH_SIZE = 200

# Which statuses a booking may move to from each status (DESIGN.md 1.3).
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    BookingStatus.REQUESTED: frozenset(
        {BookingStatus.BOOKED, BookingStatus.DECLINED, BookingStatus.CANCELLED}
    ),
    BookingStatus.BOOKED: frozenset({BookingStatus.DECLINED, BookingStatus.CANCELLED}),
    BookingStatus.DECLINED: frozenset(),
    BookingStatus.CANCELLED: frozenset(),
}

PARTSTAT_DECLINED = "DECLINED"
KNOWN_PARTSTATS = frozenset({"NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED"})


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
        booking.save(update_fields=["status", "updated_at"])
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
    partstat: str,
    source: TransitionSource | str,
) -> bool:
    """Apply the bookee's answer to their invitation (a PARTSTAT) to the booking.

    DECLINED declines the booking; any other answer (ACCEPTED, TENTATIVE, ...) is recorded on
    the booking and as a transition without a change of status — the subscriber still
    decides. An answer from someone other than the booking's attendee, or the same answer
    again, changes nothing. Returns whether anything was recorded.
    """
    partstat = partstat.strip().upper()
    if partstat not in KNOWN_PARTSTATS:
        raise ValueError(f"unknown PARTSTAT {partstat!r}")
    source = TransitionSource(source)
    with transaction.atomic():
        booking = Booking.objects.select_for_update().get(pk=booking_id)
        if booking.attendee_email.strip().lower() != attendee_email.strip().lower():
            logger.info("booking answer ignored booking=%s reason=not-the-attendee", booking_id)
            return False
        if booking.attendee_partstat == partstat:
            return False
        booking.attendee_partstat = partstat
        booking.save(update_fields=["attendee_partstat", "updated_at"])
        if partstat == PARTSTAT_DECLINED and ALLOWED_TRANSITIONS[booking.status]:
            booking_transition(
                booking_id=booking_id,
                to_status=BookingStatus.DECLINED,
                source=source,
                detail={"partstat": partstat},
            )
        else:
            BookingTransition.objects.create(
                booking=booking,
                from_status=booking.status,
                to_status=booking.status,
                source=source,
                detail={"partstat": partstat},
            )
    return True


def encrypted_fields_rotate(*, batch_size: int = ROTATION_BATCH_SIZE) -> int:
    """Re-encrypt every stored secret with the first key of ``FIELD_ENCRYPTION_KEY``.

    Put the new key first, keep the old ones after it, run this, then drop the old keys.
    Each batch is decrypted with whichever key matches and written back encrypted with the
    primary key, in two queries per batch. Returns the number of rows rewritten.
    """
    rewritten = 0
    last_pk = 0
    while True:
        with transaction.atomic():
            batch = list(
                GoogleAccount.objects.select_for_update()
                .filter(pk__gt=last_pk, credentials__isnull=False)
                .only("pk", "credentials")
                .order_by("pk")[:batch_size]
            )
            if not batch:
                break
            GoogleAccount.objects.bulk_update(batch, ["credentials"])
        rewritten += len(batch)
        last_pk = batch[-1].pk
    logger.info("encrypted fields rotated rows=%d", rewritten)
    return rewritten
