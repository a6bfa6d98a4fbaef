"""Convoke's own iTIP REPLY to an organizer (RFC 5546 section 3.2.3), for an answer written
into the organizer's copy of the event (the RSVP page), when the CalDAV server does not send
one itself. It is our own message: it goes straight into the outbox, never back through the
scheduling callback's checks of untrusted input.
"""

from __future__ import annotations

import datetime as dt
import logging

from calendars.ical import ICalendarError, Method, parse_itip, reply_build
from invitations.models import Delivery, DeliveryKind
from invitations.services.create import ItipContent, delivery_create

logger = logging.getLogger(__name__)


def organizer_reply_store(
    *,
    data: bytes,
    uid: str,
    organizer: str,
    attendee: str,
    recurrence_id: str | None,
    now: dt.datetime,
) -> int | None:
    """Store Convoke's REPLY for the organizer in the outbox (sent by a worker after commit);
    returns the delivery's id, or None when the REPLY cannot be built from ``data`` (the
    stored event the answer was written into)."""
    # RFC 5546 section 2.1.5: the organizer orders an attendee's REPLYs by DTSTAMP, so a
    # change of mind within the same second must be stamped after the previous REPLY to this
    # organizer about this event (ours, or one the CalDAV server relayed).
    now = now.replace(microsecond=0)
    previous = (
        Delivery.objects.filter(
            kind=DeliveryKind.ITIP, method=Method.REPLY, uid=uid, recipient=organizer
        )
        .exclude(dtstamp=None)
        .order_by("-dtstamp")
        .values_list("dtstamp", flat=True)
        .first()
    )
    dtstamp = max(now, previous + dt.timedelta(seconds=1)) if previous is not None else now
    try:
        body = reply_build(data, attendee=attendee, recurrence_id=recurrence_id, dtstamp=dtstamp)
        occurrence = parse_itip(body).primary.recurrence_id
    except ICalendarError as exc:
        # The answer is on the server; only the organizer's email is missing. Logged for
        # operators, not shown to the invitee as a failure of their answer.
        logger.error("rsvp reply not queued for the organizer reason=%s", type(exc).__name__)
        return None
    delivery = delivery_create(
        kind=DeliveryKind.ITIP,
        sender=attendee,
        recipient=organizer,
        itip=ItipContent(
            method=Method.REPLY,
            body=body,
            uid=uid,
            recurrence_id=occurrence.isoformat() if occurrence is not None else "",
            dtstamp=dtstamp,
        ),
    )
    return delivery.pk
