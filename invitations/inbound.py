"""Native answers: iTIP REPLYs that mail clients send by email, applied like link answers.

With ``CALENDAR_ITIP_ENABLED`` our invitations carry ``METHOD:REQUEST``, so Outlook, Apple
Mail, Gmail and Thunderbird show their own Accept / Decline buttons; those send an iTIP REPLY
(RFC 5546 section 3.2.3, carried by email as RFC 6047 describes) to the organizer's address.
When that address is routed to Brevo's inbound parsing, Brevo posts each email to
``POST /webhooks/brevo/inbound/``, served by django-anymail's Brevo inbound webhook
(:class:`InboundReplyWebhookView`): it checks the HTTP Basic credentials of
``ANYMAIL["WEBHOOK_SECRET"]`` (a wrong or missing one is a 400) and hands the rebuilt
message to the ``anymail.signals.inbound`` signal, the library's integration point.

:func:`inbound_message_receive` then, fast and without calling the CalDAV server:

- takes every ``text/calendar`` (or ``application/ics``) part; an email without one, or whose
  parts are not REPLYs, is ignored with a log line;
- verifies each REPLY: one organizer, one UID, and exactly one replying attendee, whose
  address is the email's From address (whole, case-insensitive); then whether it can be
  believed (:mod:`invitations.inbound_trust`: the provider's SPF/DKIM/DMARC verdict, an
  invitation Convoke delivered to that address, a SEQUENCE not older than it); a REPLY that
  cannot is stored ``refused`` with the reason and never applied;
- stores it as an :class:`~invitations.models.InboundReply` (once: a replayed webhook adds
  nothing) and enqueues its application after the commit.

:func:`inbound_reply_apply` (the Celery task) applies each VEVENT of the REPLY through
:func:`invitations.rsvp.rsvp_answer_record` with source ``caldav_reply``: the attendee must be
an attendee of the event on the server (else the REPLY is ignored), the PARTSTAT lands on the
master or on the occurrence's override, and a booking with this UID hears of it. Convoke sends
no REPLY email of its own here: the organizer's mailbox already has the client's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from email.message import Message
from email.utils import getaddresses
from typing import Any

import requests
from anymail.exceptions import AnymailConfigurationError, AnymailWebhookValidationFailure
from anymail.signals import AnymailInboundEvent, inbound
from anymail.webhooks.brevo import BrevoInboundWebhookView
from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from calendars.enqueue import enqueue, enqueue_on_commit
from calendars.ical import ICalendarError, Method, clean_address, parse_itip, recurrence_key
from calendars.models import TransitionSource
from invitations.answers import RsvpAction
from invitations.inbound_trust import (
    ReplyRefused,
    inbound_authentication_check,
    inbound_reply_trust_check,
)
from invitations.models import InboundReply, InboundReplyStatus
from invitations.rsvp import (
    RsvpEventGone,
    RsvpEventOver,
    RsvpNotAttendee,
    RsvpUnavailable,
    rsvp_answer_record,
)
from invitations.tasks import inbound_reply_apply_task

logger = logging.getLogger(__name__)

CALENDAR_TYPES = ("text/calendar", "application/ics")
MAX_CALENDAR_BYTES = 256 * 1024
MAX_CALENDAR_PARTS = 5
ERROR_MAX = 200


class InboundReplyUnavailable(Exception):
    """The CalDAV server could not be reached; the REPLY stays pending, to be tried again."""


class InboundReplyWebhookView(BrevoInboundWebhookView):
    """anymail's Brevo inbound webhook, closed unless ``ANYMAIL["WEBHOOK_SECRET"]`` is set.

    Brevo retries a webhook only after a timeout or a 429; any other 4xx or 5xx discards it
    (developers.brevo.com, "Retry mechanism"). So a body that is not an inbound payload is a
    400 (it cannot get better), and an attachment that cannot be fetched from Brevo's API
    right now is a 429: Brevo posts the email again later instead of losing the answer.
    """

    warn_if_no_basic_auth = False

    def validate_request(self, request: HttpRequest) -> None:
        # anymail runs every validate_request of the class chain: this one and its basic auth.
        if not self.basic_auth:
            raise AnymailWebhookValidationFailure(
                "the inbound webhook is disabled: ANYMAIL_WEBHOOK_SECRET is not set"
            )

    def parse_events(self, request: HttpRequest) -> list[AnymailInboundEvent]:
        try:
            return list(super().parse_events(request))
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise AnymailWebhookValidationFailure("not a Brevo inbound payload") from exc
        except AnymailConfigurationError as exc:  # a tracking payload posted here
            raise AnymailWebhookValidationFailure("not a Brevo inbound payload") from exc

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().post(request, *args, **kwargs)
        except requests.RequestException as exc:
            logger.warning(
                "inbound mail attachment not fetched from Brevo error=%s; asking for a retry",
                type(exc).__name__,
            )
            return HttpResponse(
                "The attachments could not be fetched; please retry.\n",
                status=429,
                content_type="text/plain; charset=utf-8",
                headers={"Retry-After": "600"},
            )


@receiver(inbound, sender=InboundReplyWebhookView, dispatch_uid="convoke-inbound-reply")
def _inbound_received(sender: Any, event: AnymailInboundEvent, esp_name: str, **_: Any) -> None:
    inbound_message_receive(message=event.message)


def _from_address(message: Message) -> str | None:
    addresses = [address for _, address in getaddresses(message.get_all("From", [])) if address]
    if len(addresses) != 1 or addresses[0].count("@") != 1:
        return None
    return clean_address(addresses[0])


def _ignored(reason: str, **detail: object) -> None:
    extra = "".join(f" {name}={value}" for name, value in detail.items())
    logger.info("inbound mail ignored reason=%s%s", reason, extra)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if timezone.is_aware(value) else value.replace(tzinfo=dt.UTC)


def inbound_message_receive(*, message: Message) -> list[int]:
    """Store the verified iTIP REPLYs of one inbound email; returns the stored ids.

    Nothing here calls the CalDAV server (see the module docstring); an email that carries no
    usable REPLY is ignored with a log line, never an error (the sender would retry it).
    """
    sender = _from_address(message)
    parts = [part for part in message.walk() if part.get_content_type() in CALENDAR_TYPES]
    if not parts:
        _ignored("no-calendar-part")
        return []
    if sender is None:
        _ignored("no-single-from-address")
        return []
    try:
        inbound_authentication_check(message=message)
        distrusted = ""
    except ReplyRefused as exc:
        distrusted = exc.reason
    stored: list[int] = []
    for part in parts[:MAX_CALENDAR_PARTS]:
        payload = part.get_payload(decode=True)
        body = payload if isinstance(payload, bytes) else b""
        if not body or len(body) > MAX_CALENDAR_BYTES:
            _ignored("calendar-part-empty-or-too-large", size=len(body))
            continue
        try:
            itip = parse_itip(body)
        except ICalendarError:
            _ignored("calendar-part-unreadable")
            continue
        if itip.method is not Method.REPLY:
            _ignored("not-a-reply", method=itip.method.value if itip.method else "none")
            continue
        replying = {a.address for e in itip.events for a in e.attendees}
        organizers = {e.organizer.address for e in itip.events if e.organizer}
        uids = {e.uid for e in itip.events}
        if replying != {sender}:
            _ignored("from-is-not-the-replying-attendee", attendees=len(replying))
            continue
        if len(organizers) != 1 or len(uids) != 1:
            _ignored("not-one-organizer-and-one-event")
            continue
        uid = uids.pop()
        refused = distrusted
        if not refused:
            try:
                inbound_reply_trust_check(
                    uid=uid, attendee=sender, sequence=max(e.sequence for e in itip.events)
                )
            except ReplyRefused as exc:
                refused = exc.reason
        reply_id = _reply_store(
            body=body,
            attendee=sender,
            organizer=organizers.pop(),
            uid=uid,
            dtstamp=_aware(itip.primary.dtstamp),
            refused=refused,
        )
        if reply_id is not None:
            stored.append(reply_id)
    return stored


def _reply_store(
    *,
    body: bytes,
    attendee: str,
    organizer: str,
    uid: str,
    dtstamp: dt.datetime | None,
    refused: str = "",
) -> int | None:
    """Store a REPLY; enqueue its application, or keep it ``refused`` with the reason."""
    digest = hashlib.sha256(body).hexdigest()
    try:
        with transaction.atomic():
            reply = InboundReply.objects.create(
                body=body,
                body_sha256=digest,
                attendee=attendee,
                organizer=organizer,
                uid=uid[:1024],
                dtstamp=dtstamp,
                status=InboundReplyStatus.REFUSED if refused else InboundReplyStatus.PENDING,
                last_error=refused[:ERROR_MAX],
            )
            if not refused:
                enqueue_on_commit(inbound_reply_apply_task, reply.pk)
    except IntegrityError:
        logger.info("inbound reply duplicate ignored")
        return None
    if refused:
        logger.warning("inbound reply refused reply=%s reason=%s", reply.pk, refused)
    else:
        logger.info("inbound reply stored reply=%s", reply.pk)
    return reply.pk


def _finish(reply_id: int, status: InboundReplyStatus, error: str = "") -> None:
    InboundReply.objects.filter(pk=reply_id).update(
        status=status, last_error=error[:ERROR_MAX], updated_at=timezone.now()
    )
    logger.info("inbound reply %s reply=%s reason=%s", status, reply_id, error or "-")


def inbound_reply_apply(*, reply_id: int) -> str:
    """Apply a stored REPLY to the organizer's event; returns the reply's new status.

    A REPLY older (by DTSTAMP) than one already applied for the same attendee and event is
    ignored (RFC 5546 section 2.1.5). Raises :class:`InboundReplyUnavailable` when the CalDAV
    server fails; the reply stays pending with one more attempt counted.
    """
    reply = InboundReply.objects.filter(pk=reply_id, status=InboundReplyStatus.PENDING).first()
    if reply is None:
        return "skipped"
    InboundReply.objects.filter(pk=reply_id).update(attempts=reply.attempts + 1)
    if (
        reply.dtstamp is not None
        and InboundReply.objects.filter(
            uid=reply.uid,
            attendee=reply.attendee,
            status=InboundReplyStatus.APPLIED,
            dtstamp__gt=reply.dtstamp,
        ).exists()
    ):
        _finish(reply_id, InboundReplyStatus.IGNORED, "a later REPLY was applied already")
        return InboundReplyStatus.IGNORED
    try:
        itip = parse_itip(bytes(reply.body))
    except ICalendarError:
        _finish(reply_id, InboundReplyStatus.IGNORED, "unreadable")
        return InboundReplyStatus.IGNORED
    applied = 0
    for event in itip.events:
        entry = event.attendee(reply.attendee)
        action = RsvpAction.of(entry.partstat) if entry is not None else None
        if action is None:
            logger.info("inbound reply part skipped reply=%s reason=unsupported-partstat", reply_id)
            continue
        try:
            rsvp_answer_record(
                uid=reply.uid,
                organizer=reply.organizer,
                attendee=reply.attendee,
                recurrence_id=recurrence_key(event.recurrence_id)
                if event.recurrence_id is not None
                else None,
                partstat=action.partstat,
                source=TransitionSource.CALDAV_REPLY,
                notify_organizer=False,
            )
        except RsvpNotAttendee:
            _finish(reply_id, InboundReplyStatus.IGNORED, "not an attendee of the stored event")
            return InboundReplyStatus.IGNORED
        except RsvpEventGone:
            _finish(reply_id, InboundReplyStatus.IGNORED, "event or occurrence not found")
            return InboundReplyStatus.IGNORED
        except RsvpEventOver:
            _finish(reply_id, InboundReplyStatus.IGNORED, "event over")
            return InboundReplyStatus.IGNORED
        except RsvpUnavailable as exc:
            InboundReply.objects.filter(pk=reply_id).update(
                last_error="CalDAV server unavailable", updated_at=timezone.now()
            )
            raise InboundReplyUnavailable("the CalDAV server is unavailable") from exc
        applied += 1
    if not applied:
        _finish(reply_id, InboundReplyStatus.IGNORED, "no accepted, tentative or declined answer")
        return InboundReplyStatus.IGNORED
    _finish(reply_id, InboundReplyStatus.APPLIED)
    return InboundReplyStatus.APPLIED


def inbound_reply_fail(*, reply_id: int, reason: str) -> None:
    """Give up on a pending REPLY (retries exhausted); operators find it ``failed``."""
    InboundReply.objects.filter(pk=reply_id, status=InboundReplyStatus.PENDING).update(
        status=InboundReplyStatus.FAILED, last_error=reason[:ERROR_MAX], updated_at=timezone.now()
    )
    logger.error("inbound reply failed reply=%s reason=%s", reply_id, reason)


INBOUND_LOST_AFTER = dt.timedelta(minutes=10)
INBOUND_SWEEP_BATCH_SIZE = 200


def inbound_replies_sweep(
    *, now: dt.datetime | None = None, batch_size: int = INBOUND_SWEEP_BATCH_SIZE
) -> list[int]:
    """Enqueue again the stored REPLYs whose first attempt never ran (the enqueue after the
    commit was lost: broker down, process killed). Run by the periodic delivery sweep.

    A reply is taken when it is still pending with no attempt, untouched for
    :data:`INBOUND_LOST_AFTER`; taking it touches it, so a slow queue is not flooded with
    copies. Applying a reply is idempotent, so a copy that does run changes nothing.
    """
    now = now or timezone.now()
    lost = list(
        InboundReply.objects.filter(
            status=InboundReplyStatus.PENDING,
            attempts=0,
            updated_at__lte=now - INBOUND_LOST_AFTER,
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    if lost:
        InboundReply.objects.filter(pk__in=lost).update(updated_at=now)
        for reply_id in lost:
            if not enqueue(inbound_reply_apply_task, reply_id):
                break  # the broker is down; the next sweep tries again
        logger.warning("inbound replies enqueued again by the sweep count=%d", len(lost))
    return lost


def inbound_replies_retry(*, reply_ids: list[int]) -> int:
    """Operators: apply failed REPLYs again (after a long CalDAV outage). Each goes back to
    pending with its attempts reset and is enqueued after the commit; returns how many."""
    with transaction.atomic():
        ids = list(
            InboundReply.objects.filter(
                pk__in=reply_ids, status=InboundReplyStatus.FAILED
            ).values_list("pk", flat=True)
        )
        InboundReply.objects.filter(pk__in=ids).update(
            status=InboundReplyStatus.PENDING, attempts=0, last_error="", updated_at=timezone.now()
        )
        for reply_id in ids:
            enqueue_on_commit(inbound_reply_apply_task, reply_id)
    logger.info("inbound replies retried by an operator count=%d", len(ids))
    return len(ids)
