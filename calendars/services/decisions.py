"""Decisions on a booking from outside Google: the API, the decision links, the operators.

A decision races the changes people make in Google Calendar (the owner deletes or moves the
event, the bookee or the subscriber answers it), whose push notifications arrive late, out
of order or not at all (docs/google-calendar.md). So before it moves a booking whose event is
on Google, :func:`booking_decide` reads the event and applies it as the sync would
(:func:`booking_google_refresh`): a change made in Google before the decision counts first,
and a decision that lost the race is refused with the booking's real state
(:class:`~calendars.services.transitions.BookingTransitionError`, a 409 for the API and the
links, a warning for operators). A change made in Google after that read is caught by the
publish, whose writes carry ``If-Match`` (:mod:`calendars.services.publish`).

When Google cannot be read (an outage, a revoked grant), the decision goes ahead on what
Convoke knows; the publish's ``If-Match`` still keeps a deleted event deleted.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

from calendars import hooks
from calendars.models import Booking, BookingStatus, Provider, TransitionSource
from calendars.providers import ProviderError, google
from calendars.services.transitions import (
    TransitionResult,
    booking_cancel,
    booking_confirm,
    booking_deny,
)

logger = logging.getLogger(__name__)


class Decision(enum.StrEnum):
    CONFIRM = "confirm"
    DENY = "deny"
    CANCEL = "cancel"


_MOVES = {
    Decision.CONFIRM: booking_confirm,
    Decision.DENY: booking_deny,
    Decision.CANCEL: booking_cancel,
}
_ACTIVE = frozenset({BookingStatus.REQUESTED, BookingStatus.BOOKED})


def booking_decide(
    *,
    booking_id: int,
    decision: Decision | str,
    source: TransitionSource | str,
    detail: dict[str, Any] | None = None,
) -> TransitionResult:
    """Confirm, deny or cancel a booking after bringing it up to date with Google.

    Idempotent like the moves it calls. Raises
    :class:`~calendars.services.transitions.BookingTransitionError` (its ``from_status`` is
    the booking's real state) and ``Booking.DoesNotExist``.
    """
    decision = Decision(decision)
    booking_google_refresh(booking_id=booking_id)
    return _MOVES[decision](booking_id=booking_id, source=source, detail=detail)


def booking_google_refresh(*, booking_id: int) -> bool:
    """Read the booking's Google event and apply it (``events.get``, then the sync's mapping
    through the ``google_event_apply`` hook). Returns whether the booking changed.

    Makes no call for a booking that is not on Google, is over (declined or cancelled), or
    whose event was never written. Failures to read are logged and ignored (see the module
    docstring); a revoked grant is recorded.
    """
    booking = Booking.objects.select_related("calendar", "calendar__google_account").get(
        pk=booking_id
    )
    calendar = booking.calendar
    account = calendar.google_account
    if (
        calendar.provider != Provider.GOOGLE
        or not calendar.connected
        or account is None
        or account.revoked
        or not booking.google_event_id
        or not booking.provider_status
        or booking.status not in _ACTIVE
    ):
        return False
    try:
        client = hooks.google_client(account)
        event = client.event_get(calendar_id=calendar.remote_id, event_id=booking.google_event_id)
    except google.AuthRevoked:
        hooks.google_grant_revoked(account_id=account.pk)
        return False
    except google.NotFound:
        logger.warning("booking event not found in Google booking=%s", booking_id)
        return False
    except ProviderError as exc:
        logger.warning(
            "booking event not read before a decision booking=%s reason=%s", booking_id, exc.reason
        )
        return False
    return hooks.google_event_apply(booking_id=booking_id, event=event)
