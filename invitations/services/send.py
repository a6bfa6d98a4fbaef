"""Sending one delivery: claim, build, hand to the transport, record the outcome.

1. :func:`delivery_send` claims the delivery with one conditional UPDATE (``pending`` /
   ``failed`` -> ``sending``, ``attempts + 1``): of two workers holding the same id, exactly
   one wins.
2. It builds the email (:func:`delivery_email_build`) with the delivery's own Message-ID,
   the same on every attempt. A delivery that cannot be rendered is dead at once (retrying
   cannot change the stored content); one whose reason went away (a booking decided before
   its request email left) is ``skipped``.
3. It hands the email to the delivery's transport. A transient failure leaves it ``failed``
   with ``next_attempt_at`` after the ``delivery`` retry policy's delay
   (:mod:`calendars.retry`); a permanent failure, or a transient one on the last allowed
   attempt, leaves it ``dead``. Only transport failures are ever retried.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import F
from django.utils import timezone

from calendars.metrics import counter_increment
from calendars.retry import retry_policy
from invitations.emails import EmailNotRenderable, email_build
from invitations.models import Delivery, DeliveryKind, DeliveryStatus
from invitations.notices import DeliveryNotNeeded, notice_email_build
from invitations.selectors import previous_request_body
from invitations.transports import (
    PermanentSendError,
    SendError,
    TransientSendError,
    transport_for,
)

logger = logging.getLogger(__name__)


class DeliveryOutcome(enum.StrEnum):
    SENT = "sent"
    RETRY = "retry"  # transient failure, status failed, next_attempt_at set
    DEAD = "dead"
    SKIPPED = "skipped"  # not claimable (sent, dead, another worker has it), or not needed


def delivery_retry_delay(*, attempt: int) -> dt.timedelta:
    """How long to wait after failed attempt number ``attempt`` (1-based): the ``delivery``
    retry policy, so that deliveries that failed together (a relay outage) do not come
    back together."""
    return dt.timedelta(seconds=retry_policy("delivery").delay(failures=attempt))


def delivery_email_build(*, delivery: Delivery) -> EmailMessage:
    """The complete email for ``delivery`` (not sent): its calendar message rendered by
    :func:`invitations.emails.email_build`, or a booking notice rendered from its booking or
    account (:func:`invitations.notices.notice_email_build`).

    Raises :class:`~invitations.emails.EmailNotRenderable` (a ``ValueError``, with a reason
    for operators) or ``ValueError`` when the stored content cannot be rendered, which
    retrying cannot change, and :class:`DeliveryNotNeeded`.
    """
    if delivery.kind == DeliveryKind.ITIP:
        # Without a stored language or zone, email_build looks up the recipient's stored
        # preferences, else the organizer's, else English and the event's zone.
        return email_build(
            body=bytes(delivery.body or b""),
            method=delivery.method,
            sender=delivery.sender,
            recipient=delivery.recipient,
            message_id=delivery.message_id_header,
            language=delivery.language or None,
            time_zone=delivery.time_zone or None,
            previous_body=previous_request_body(delivery=delivery),
        )
    return notice_email_build(delivery=delivery)


def _delivery_claim(delivery_id: int) -> bool:
    now = timezone.now()
    claimed = (
        Delivery.objects.claimable()
        .filter(pk=delivery_id)
        .update(
            status=DeliveryStatus.SENDING,
            attempts=F("attempts") + 1,
            claimed_at=now,
            next_attempt_at=None,
            updated_at=now,
        )
    )
    return claimed == 1


def delivery_failure_record(delivery: Delivery, attempt: int, error: SendError) -> DeliveryOutcome:
    """Record a failed attempt: ``failed`` with its next attempt, or ``dead``."""
    now = timezone.now()
    policy = retry_policy("delivery")
    permanent = isinstance(error, PermanentSendError)
    if permanent or policy.exhausted(attempts=attempt):
        status, next_attempt_at, outcome = DeliveryStatus.DEAD, None, DeliveryOutcome.DEAD
    else:
        status = DeliveryStatus.FAILED
        next_attempt_at = now + delivery_retry_delay(attempt=attempt)
        outcome = DeliveryOutcome.RETRY
    Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING, attempts=attempt).update(
        status=status, next_attempt_at=next_attempt_at, last_error=error.reason, updated_at=now
    )
    log = logger.warning if outcome == DeliveryOutcome.RETRY else logger.error
    log(
        "delivery failed delivery=%s kind=%s transport=%s attempt=%d outcome=%s reason=%s",
        delivery.pk,
        delivery.kind,
        delivery.transport,
        attempt,
        outcome,
        error.reason,
    )
    counter_increment("convoke_deliveries", transport=delivery.transport, outcome=str(outcome))
    return outcome


def _skipped_record(delivery: Delivery, attempt: int, reason: str) -> DeliveryOutcome:
    Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING, attempts=attempt).update(
        status=DeliveryStatus.SKIPPED, last_error=reason[:500], updated_at=timezone.now()
    )
    logger.info("delivery not needed delivery=%s kind=%s", delivery.pk, delivery.kind)
    return DeliveryOutcome.SKIPPED


def delivery_send(*, delivery_id: int) -> DeliveryOutcome:
    """Claim, build and send one delivery; record the outcome.

    Returns ``SKIPPED`` without side effects when the delivery is not claimable (already
    sent or dead, or being sent by another worker right now).
    """
    if not _delivery_claim(delivery_id):
        logger.info("delivery not claimable delivery=%s", delivery_id)
        return DeliveryOutcome.SKIPPED
    delivery = Delivery.objects.get(pk=delivery_id)
    attempt = delivery.attempts
    try:
        email = delivery_email_build(delivery=delivery)
    except DeliveryNotNeeded as exc:
        return _skipped_record(delivery, attempt, exc.reason)
    except EmailNotRenderable as exc:  # permanent: dead at once, with the reason
        return delivery_failure_record(delivery, attempt, PermanentSendError(exc.reason))
    except ValueError:
        # A rendering failure is permanent: the stored content will not change.
        what = "iCalendar body" if delivery.kind == DeliveryKind.ITIP else "email"
        return delivery_failure_record(
            delivery, attempt, PermanentSendError(f"the stored {what} cannot be rendered")
        )
    try:
        result = transport_for(delivery.transport).send(
            email=email, sender=delivery.sender, recipient=delivery.recipient
        )
    except SendError as exc:
        return delivery_failure_record(delivery, attempt, exc)
    except SoftTimeLimitExceeded:  # only transport failures are transient (docs/design.md 1.5)
        return delivery_failure_record(
            delivery, attempt, TransientSendError("sending outlasted the worker's time limit")
        )
    now = timezone.now()
    sent = {
        "status": DeliveryStatus.SENT,
        "sent_at": now,
        "provider_message_id": result.provider_message_id[:255],
        "last_error": "",
        "updated_at": now,
    }
    updated = Delivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.SENDING, attempts=attempt
    ).update(**sent)
    if not updated:
        # The sweep took this attempt for a dead worker's while it was still sending.
        logger.warning("delivery sent after being presumed lost delivery=%s", delivery.pk)
        Delivery.objects.filter(pk=delivery.pk).exclude(status=DeliveryStatus.SENT).update(**sent)
    logger.info(
        "delivery sent delivery=%s kind=%s transport=%s attempt=%d",
        delivery.pk,
        delivery.kind,
        delivery.transport,
        attempt,
    )
    counter_increment("convoke_deliveries", transport=delivery.transport, outcome="sent")
    return DeliveryOutcome.SENT


def delivery_time_limit_record(*, delivery_id: int) -> None:
    """The worker's hard time limit ended an attempt in progress: dead at once (docs/design.md
    1.5). Rendering is bounded and every transport has a timeout below the limit, so an
    attempt that reaches it would only reach it again."""
    delivery = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENDING).first()
    if delivery is not None:
        reason = (
            f"stopped by the worker's hard time limit ({settings.TASK_TIME_LIMIT_SECONDS:g} s): "
            "the event is too expensive to render"
        )
        delivery_failure_record(delivery, delivery.attempts, PermanentSendError(reason))


def delivery_crash_record(*, delivery_id: int, reason: str) -> None:
    """Record an unexpected error of an attempt in progress as a transient failure."""
    delivery = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENDING).first()
    if delivery is not None:
        delivery_failure_record(delivery, delivery.attempts, TransientSendError(reason))
