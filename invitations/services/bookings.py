"""The bookings' emails into the outbox (registered as the core's ``booking_email`` hook, and
called by the Google app for the revoked-grant notice).

Each email gets a Message-ID derived from what it is about (``booking.12.request``,
``booking.12.request.1`` for the bookee's REQUEST of SEQUENCE 1), so storing it twice sends
it once, and mail clients fold the copies of an email sent again after a doubt.
"""

from __future__ import annotations

from email.utils import parseaddr

from django.conf import settings

from calendars.hooks import BookingEmail, BookingEmailRequest
from calendars.ical import Method
from calendars.models import Booking, GoogleAccount
from invitations.models import Delivery, DeliveryKind
from invitations.services.create import ItipContent, delivery_create, message_id_for

# The Message-ID part of the subscriber's notices, as before they moved into the outbox.
NOTICE_IDS = {BookingEmail.REQUEST: "request", BookingEmail.AUTO_CONFIRMED: "auto_confirmed"}


def _own_address() -> str:
    return parseaddr(settings.CALENDAR_INVITATION_FROM_EMAIL)[1]


def booking_email_store(request: BookingEmailRequest) -> Delivery:
    """Store one email of a booking, in the caller's transaction (the core's hook).

    The bookee's invitation is a calendar message from the subscriber, sent through the
    Messages API when the booking's calendar is linked to a mailbox; the subscriber's notices
    come from Convoke's own address through the mailer.
    """
    booking = Booking.objects.select_related("organizer", "calendar").get(pk=request.booking_id)
    if request.email == BookingEmail.INVITATION:
        if request.body is None:
            raise ValueError("a booking invitation needs its iTIP body")
        method = Method(request.method.upper())
        return delivery_create(
            kind=DeliveryKind.ITIP,
            sender=booking.organizer.email,
            recipient=booking.attendee_email,
            mailbox=booking.calendar.is_mailbox,
            itip=ItipContent(
                method=method,
                body=request.body,
                uid=booking.ical_uid,
                sequence=request.sequence,
            ),
            booking_id=booking.pk,
            language=booking.attendee_language,
            time_zone=booking.attendee_time_zone,
            message_id=message_id_for("booking", booking.pk, method.lower(), request.sequence),
        )
    return delivery_create(
        kind=DeliveryKind(request.email.value),
        sender=_own_address(),
        recipient=booking.organizer.email,
        booking_id=booking.pk,
        message_id=message_id_for("booking", booking.pk, NOTICE_IDS[request.email]),
    )


def google_revoked_email_store(*, account: GoogleAccount) -> Delivery:
    """Store the notice that Google revoked ``account``'s grant, to its owner, once per
    revocation."""
    stamp = int(account.revoked_at.timestamp()) if account.revoked_at else 0
    return delivery_create(
        kind=DeliveryKind.GOOGLE_REVOKED,
        sender=_own_address(),
        recipient=account.owner.email,
        google_account_id=account.pk,
        message_id=message_id_for("google-revoked", account.pk, stamp),
    )
