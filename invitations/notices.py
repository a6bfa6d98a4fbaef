"""The bookings' notices to the subscriber, built from the booking or account a delivery names.

- ``booking_request`` (``templates/emails/booking_request.*``): a new request with Confirm and
  Deny links (:mod:`calendars.booking_tokens`), in the subscriber's language and time zone.
  When the booking was decided before the email left, the links would lead nowhere: the
  delivery is not needed any more (:class:`DeliveryNotNeeded`).
- ``booking_auto_confirmed``: the notice that a booking was confirmed at once.
- ``google_revoked`` (``templates/emails/google_account_revoked.*``): Google access was
  revoked, with the address to reconnect; not needed once the account is connected again.

They are rendered when the delivery is sent (so the links and the state are current) by the
same renderer as every email (:func:`invitations.emails.email_render`). The bookee's own
invitation is a calendar message and goes through :func:`invitations.emails.email_build`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.urls import reverse

from calendars.booking_tokens import decision_token_make
from calendars.ical import Event as ICalEvent
from calendars.models import Booking, BookingStatus, GoogleAccount
from calendars.translations import resolve_language
from invitations.emails import email_render
from invitations.models import Delivery, DeliveryKind
from invitations.rendering.dates import when_text as event_when_text


class DeliveryNotNeeded(Exception):
    """The email's reason went away before it left; ``reason`` says why (no personal data)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def when_text(*, start: dt.datetime, end: dt.datetime, zone: str, language: str) -> str:
    """The slot in words, in ``language`` and ``zone`` ("Tue 4 Mar 2031, 10:00 - 10:30 ...")."""
    event = ICalEvent(uid="booking", start=start, end=end, time_zone=zone)
    return event_when_text(event, zone=zone, language=language).text


def decision_links(booking: Booking) -> dict[str, str]:
    """The subscriber's Confirm and Deny links (``GET/POST /bookings/decide/``)."""
    token = decision_token_make(booking_id=booking.pk, ical_uid=booking.ical_uid)
    base = settings.APP_URL + reverse("booking-decide")
    return {
        action: f"{base}?{urlencode({'token': token, 'action': action})}"
        for action in ("confirm", "deny")
    }


def _mail(
    *, delivery: Delivery, template: str, context: dict[str, Any], reply_to: str = ""
) -> EmailMultiAlternatives:
    subject, text, html = email_render(template=template, context=context)
    mail = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.CALENDAR_INVITATION_FROM_EMAIL,
        to=[delivery.recipient],
        reply_to=[reply_to] if reply_to else None,
        headers={"Message-ID": delivery.message_id_header},
    )
    mail.attach_alternative(html, "text/html")
    return mail


def _booking_notice(delivery: Delivery) -> EmailMultiAlternatives:
    booking = (
        Booking.objects.select_related("organizer", "schedule")
        .filter(pk=delivery.booking_id)
        .first()
        if delivery.booking_id is not None
        else None
    )
    if booking is None:
        raise ValueError("the booking of this email no longer exists")
    if delivery.kind == DeliveryKind.BOOKING_REQUEST and booking.status != BookingStatus.REQUESTED:
        raise DeliveryNotNeeded("the booking was decided before its request email left")
    organizer = booking.organizer
    language = resolve_language(organizer.language)
    context: dict[str, Any] = {
        "language": language,
        "title": booking.title,
        "attendee_name": booking.attendee_name,
        "attendee_email": booking.attendee_email,
        "description": booking.description,
        "when": when_text(
            start=booking.start, end=booking.end, zone=organizer.time_zone, language=language
        ),
        "schedule": booking.schedule.title if booking.schedule else "",
        "links": decision_links(booking) if delivery.kind == DeliveryKind.BOOKING_REQUEST else None,
        "app_url": settings.APP_URL,
    }
    return _mail(
        delivery=delivery,
        template=str(delivery.kind),
        context=context,
        reply_to=booking.attendee_email,
    )


def _google_revoked_notice(delivery: Delivery) -> EmailMultiAlternatives:
    account = (
        GoogleAccount.objects.select_related("owner").filter(pk=delivery.google_account_id).first()
        if delivery.google_account_id is not None
        else None
    )
    if account is None:
        raise ValueError("the Google account of this email no longer exists")
    if not account.revoked:
        raise DeliveryNotNeeded("the Google account was connected again")
    context = {
        "language": resolve_language(account.owner.language),
        "reconnect_url": settings.APP_URL + reverse("google-connect"),
        "app_url": settings.APP_URL,
    }
    return _mail(delivery=delivery, template="google_account_revoked", context=context)


def notice_email_build(*, delivery: Delivery) -> EmailMultiAlternatives:
    """The notice ``delivery`` sends (any kind but ``itip``). Raises
    :class:`DeliveryNotNeeded`, and ``ValueError`` when what it names is gone."""
    if delivery.kind in (DeliveryKind.BOOKING_REQUEST, DeliveryKind.BOOKING_AUTO_CONFIRMED):
        return _booking_notice(delivery)
    if delivery.kind == DeliveryKind.GOOGLE_REVOKED:
        return _google_revoked_notice(delivery)
    raise ValueError(f"no notice of kind {delivery.kind!r}")
