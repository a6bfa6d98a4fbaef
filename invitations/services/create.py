"""Storing an email in the outbox: the one way every email of Convoke starts its life.

:func:`delivery_create` stores a :class:`~invitations.models.Delivery` (status ``pending``)
in the caller's transaction and, once that transaction commits, makes sure a worker will
send the pending deliveries (:mod:`.nudge`). The
scheduling callback, Convoke's own RSVP REPLYs and the bookings' emails all call it; what
it stores is what the worker needs to build the email, never how the content arrived.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from calendars.enqueue import enqueue_on_commit
from calendars.ical import ITIP_EMAIL_METHODS, Method
from invitations.models import Delivery, DeliveryKind, DeliveryStatus, DeliveryTransport
from invitations.services.nudge import deliveries_nudge_on_commit
from invitations.tasks import delivery_send_task

# A new delivery is enqueued on commit; the sweep only steps in when that has not been
# picked up after this long (a lost enqueue, a broker outage at commit time).
PENDING_ENQUEUE_GRACE = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class ItipContent:
    """The calendar message of a delivery of kind ``itip``: the iTIP body and what
    identifies it (RFC 5546 section 2.1.5: UID, RECURRENCE-ID, SEQUENCE, DTSTAMP)."""

    method: Method
    body: bytes
    uid: str
    recurrence_id: str = ""
    sequence: int = 0
    dtstamp: dt.datetime | None = None
    # The body already parsed, stored for the worker (invitations.prepared.prepared_dump).
    prepared: bytes | None = None


def message_id_domain() -> str:
    sender = settings.CALENDAR_INVITATION_FROM_EMAIL
    domain = sender.rpartition("@")[2].strip(" >") if "@" in sender else ""
    return domain or urlsplit(settings.APP_URL).hostname or "convoke.invalid"


def message_id_new() -> str:
    """A fresh RFC 5322 Message-ID (section 3.6.4): unique, stable once stored."""
    return f"<{uuid.uuid4().hex}@{message_id_domain()}>"


def message_id_for(*parts: object) -> str:
    """A Message-ID derived from what the email is about (``booking.12.request``), so that
    storing the same email twice finds the first one."""
    return "<" + ".".join(str(part) for part in parts) + f"@{message_id_domain()}>"


def transport_choose(*, mailbox: bool) -> DeliveryTransport:
    """The one transport choice: the La Suite Messages API when the organizer's calendar is
    linked to a mailbox (``Calendar.is_mailbox``) or the callback says so
    (``X-LS-Is-Mailbox``), the configured mailer otherwise. Never a fallback from one to
    the other: the organizer chose their mailbox. The mailer's label says where it leads:
    files, an SMTP relay or Brevo (``settings.MAIL_ROUTE``)."""
    return DeliveryTransport.MESSAGES if mailbox else DeliveryTransport(settings.MAIL_ROUTE)


def delivery_enqueue_on_commit(delivery_id: int) -> None:
    """Send this one delivery after the commit (an operator's retry); a lost enqueue is the
    sweep's."""
    enqueue_on_commit(delivery_send_task, delivery_id)


def delivery_new(
    *,
    kind: DeliveryKind,
    sender: str,
    recipient: str,
    mailbox: bool = False,
    itip: ItipContent | None = None,
    booking_id: int | None = None,
    google_account_id: int | None = None,
    language: str = "",
    time_zone: str = "",
    message_id: str = "",
) -> Delivery:
    """The delivery :func:`delivery_create` stores, not saved yet (arguments as there).

    For a caller that inserts it together with a row of its own in one statement (the
    scheduling callback: the delivery and its message); that caller then calls
    :func:`~invitations.services.nudge.deliveries_nudge_on_commit` as :func:`delivery_create`
    does. Raises ``ValueError`` as :func:`delivery_create` does.
    """
    if (kind == DeliveryKind.ITIP) != (itip is not None):
        raise ValueError("an itip delivery needs its calendar message, and only it")
    if itip is not None and itip.method not in ITIP_EMAIL_METHODS:
        raise ValueError(f"no email for the iTIP method {itip.method}")
    delivery = Delivery(
        kind=kind,
        sender=sender,
        recipient=recipient,
        transport=transport_choose(mailbox=mailbox),
        status=DeliveryStatus.PENDING,
        next_attempt_at=timezone.now() + PENDING_ENQUEUE_GRACE,
        message_id_header=message_id or message_id_new(),
        booking_id=booking_id,
        google_account_id=google_account_id,
        language=language,
        time_zone=time_zone,
    )
    if itip is not None:
        delivery.method = itip.method.value
        delivery.body = itip.body
        delivery.uid = itip.uid
        delivery.recurrence_id = itip.recurrence_id
        delivery.sequence = itip.sequence
        delivery.dtstamp = itip.dtstamp
        delivery.prepared = itip.prepared
    return delivery


def delivery_create(
    *,
    kind: DeliveryKind,
    sender: str,
    recipient: str,
    mailbox: bool = False,
    itip: ItipContent | None = None,
    booking_id: int | None = None,
    google_account_id: int | None = None,
    language: str = "",
    time_zone: str = "",
    message_id: str = "",
) -> Delivery:
    """Store one email for ``recipient``; it is sent after the caller's commit.

    ``itip`` is required for kind ``itip`` (and only there). ``mailbox`` chooses the
    transport (:func:`transport_choose`). ``language`` and ``time_zone`` are the
    recipient's when the caller knows them. With ``message_id`` (see
    :func:`message_id_for`), a delivery already stored under it is returned unchanged:
    asking twice for the same email sends it once.
    """
    delivery = delivery_new(
        kind=kind,
        sender=sender,
        recipient=recipient,
        mailbox=mailbox,
        itip=itip,
        booking_id=booking_id,
        google_account_id=google_account_id,
        language=language,
        time_zone=time_zone,
        message_id=message_id,
    )
    if message_id:
        existing = Delivery.objects.filter(message_id_header=message_id).first()
        if existing is not None:
            return existing
    if not message_id:
        delivery.save(force_insert=True)
    else:
        try:
            with transaction.atomic():
                delivery.save(force_insert=True)
        except IntegrityError:
            # The same email stored at the same instant by another process.
            existing = Delivery.objects.filter(message_id_header=message_id).first()
            if existing is None:
                raise
            return existing
    deliveries_nudge_on_commit()
    return delivery
