"""The bookings' emails, built with Django's email API and sent by Celery tasks.

- To the subscriber (``templates/emails/booking_request.*``, ``booking_auto_confirmed.*``):
  a new request with Confirm and Deny links (:mod:`calendars.booking_tokens`), or the notice
  that a booking was confirmed automatically; in the subscriber's language and time zone.
- To the subscriber (``templates/emails/google_account_revoked.*``): Google access was
  revoked, with the address to reconnect.
- To the bookee, when no provider sends the invitation (Google with
  ``GOOGLE_INVITE_ENABLED`` off, CalDAV without ``CALDAV_SERVER_SCHEDULES``): the iTIP
  REQUEST or CANCEL of the booking's event, rendered by :func:`invitations.emails.email_build`.

Each function loads what it needs, builds the message and sends it through the default mailer;
the Message-ID is derived from the booking and the message, so a retried send keeps it and
mail clients can fold duplicates.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse

from calendars.booking_tokens import decision_token_make
from calendars.ical import Event as ICalEvent
from calendars.ical import booking_event_build
from calendars.models import Booking, BookingStatus, GoogleAccount
from calendars.translations import resolve_language

SUBSCRIBER_KINDS = frozenset({"request", "auto_confirmed"})
SUBJECT_MAX_CHARS = 200


def _message_id(*parts: object) -> str:
    domain = settings.CALENDAR_INVITATION_FROM_EMAIL.rpartition("@")[2] or "convoke.invalid"
    return "<" + ".".join(str(p) for p in parts) + f"@{domain}>"


def _one_line(text: str) -> str:
    return " ".join(text.split())[:SUBJECT_MAX_CHARS]


def when_text(*, start: dt.datetime, end: dt.datetime, zone: str, language: str) -> str:
    """The slot in words, in ``language`` and ``zone`` ("Tue 4 Mar 2031, 10:00 - 10:30 ...")."""
    from invitations.rendering.dates import when_text as event_when_text

    event = ICalEvent(uid="booking", start=start, end=end, time_zone=zone)
    return event_when_text(event, zone=zone, language=language).text


def decision_links(booking: Booking) -> dict[str, str]:
    token = decision_token_make(booking_id=booking.pk, ical_uid=booking.ical_uid)
    base = settings.APP_URL + reverse("booking-decide")
    return {
        action: f"{base}?{urlencode({'token': token, 'action': action})}"
        for action in ("confirm", "deny")
    }


def _render(name: str, context: dict[str, Any]) -> tuple[str, str, str]:
    subject = _one_line(render_to_string(f"emails/{name}.subject.txt", context))
    context = {**context, "subject": subject}
    text = render_to_string(f"emails/{name}.txt", context).strip() + "\n"
    html = render_to_string(f"emails/{name}.html", context)
    return subject, text, html


def subscriber_email_build(*, booking: Booking, kind: str) -> EmailMultiAlternatives:
    """The subscriber's email about a new booking (``kind`` "request" or "auto_confirmed")."""
    if kind not in SUBSCRIBER_KINDS:
        raise ValueError(f"unknown subscriber email kind {kind!r}")
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
        "links": decision_links(booking) if kind == "request" else None,
        "app_url": settings.APP_URL,
    }
    subject, text, html = _render(f"booking_{kind}", context)
    mail = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.CALENDAR_INVITATION_FROM_EMAIL,
        to=[organizer.email],
        reply_to=[booking.attendee_email],
        headers={"Message-ID": _message_id("booking", booking.pk, kind)},
    )
    mail.attach_alternative(html, "text/html")
    return mail


def subscriber_email_send(*, booking_id: int, kind: str) -> str:
    booking = Booking.objects.select_related("organizer", "schedule").get(pk=booking_id)
    if kind == "request" and booking.status != BookingStatus.REQUESTED:
        return "skipped"  # decided before the email left: the links would lead nowhere
    subscriber_email_build(booking=booking, kind=kind).send()
    return "sent"


def invitation_email_build(
    *, booking: Booking, method: str, sequence: int
) -> EmailMultiAlternatives:
    """Convoke's own iTIP email to the bookee (RFC 6047), rendered like every invitation."""
    from invitations.emails import email_build

    method = method.upper()
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError(f"unsupported method {method!r}")
    if method == "CANCEL":
        status = "CANCELLED"
    else:
        status = "CONFIRMED" if booking.status == BookingStatus.BOOKED else "TENTATIVE"
    body = booking_event_build(
        uid=booking.ical_uid,
        sequence=sequence,
        status=status,
        summary=booking.title,
        description=booking.description,
        start=booking.start,
        end=booking.end,
        time_zone=booking.time_zone,
        organizer_address=booking.organizer.email,
        organizer_name=booking.organizer.full_name,
        attendee_address=booking.attendee_email,
        attendee_name=booking.attendee_name,
        attendee_partstat=booking.attendee_partstat or "NEEDS-ACTION",
        method=method,
    )
    return email_build(
        body=body,
        method=method,
        sender=booking.organizer.email,
        recipient=booking.attendee_email,
        message_id=_message_id("booking", booking.pk, method.lower(), sequence),
        language=booking.attendee_language,
        time_zone=booking.attendee_time_zone,
    )


def invitation_email_send(*, booking_id: int, method: str, sequence: int) -> str:
    booking = Booking.objects.select_related("organizer").get(pk=booking_id)
    invitation_email_build(booking=booking, method=method, sequence=sequence).send()
    return "sent"


def google_revoked_email_build(*, account: GoogleAccount) -> EmailMultiAlternatives:
    owner = account.owner
    language = resolve_language(owner.language)
    context = {
        "language": language,
        "reconnect_url": settings.APP_URL + reverse("google-connect"),
        "app_url": settings.APP_URL,
    }
    subject, text, html = _render("google_account_revoked", context)
    mail = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=settings.CALENDAR_INVITATION_FROM_EMAIL,
        to=[owner.email],
        headers={
            "Message-ID": _message_id(
                "google-revoked",
                account.pk,
                int(account.revoked_at.timestamp()) if account.revoked_at else 0,
            )
        },
    )
    mail.attach_alternative(html, "text/html")
    return mail


def google_revoked_email_send(*, account_id: int) -> str:
    account = GoogleAccount.objects.select_related("owner").get(pk=account_id)
    if not account.revoked:
        return "skipped"  # reconnected meanwhile
    google_revoked_email_build(account=account).send()
    return "sent"
