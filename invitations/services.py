"""Delivery of invitation emails: create, send, retry, sweep (DESIGN.md 1.1).

The life of a delivery:

1. :func:`delivery_create` stores it (status ``pending``) in the caller's transaction and
   enqueues :func:`invitations.tasks.delivery_send_task` once that transaction commits.
2. :func:`delivery_send` claims it with one conditional UPDATE (``pending``/``failed`` ->
   ``sending``, ``attempts + 1``): of two workers holding the same id, exactly one wins. It
   renders the email through :func:`invitations.emails.email_build` with the delivery's own
   Message-ID (the same on every attempt) and hands it to the transport.
3. A transient failure leaves it ``failed`` with ``next_attempt_at`` after an exponential,
   jittered, capped delay (:func:`delivery_retry_delay`); a permanent failure, or a transient
   one on the last allowed attempt, leaves it ``dead``.
4. :func:`deliveries_sweep` (every ``DELIVERY_SWEEP_INTERVAL_SECONDS`` from Celery beat)
   enqueues what is due: retries, ``pending`` rows whose enqueue was lost, and rows stuck in
   ``sending`` because a worker died mid-send. Nothing depends on the broker keeping a task.
5. :func:`deliveries_retry` is the operator's lever (``manage.py retry_deliveries``, admin).
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from urllib.parse import urlsplit

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from calendars.metrics import counter_increment
from invitations.emails import EmailNotRenderable
from invitations.models import CLAIMABLE_STATUSES, Delivery, DeliveryStatus, DeliveryTransport
from invitations.transports import (
    PermanentSendError,
    SendError,
    TransientSendError,
    transport_for,
)
from scheduling.models import ItipMethod, SchedulingMessage

logger = logging.getLogger(__name__)

# A new delivery is enqueued on commit; the sweep only steps in when that has not been
# picked up after this long (a lost enqueue, a broker outage at commit time).
PENDING_ENQUEUE_GRACE = dt.timedelta(seconds=60)
# After the sweep enqueues a due delivery it leaves it alone this long, so a backlog in the
# broker is not enqueued again on every sweep.
SWEEP_LEASE = dt.timedelta(minutes=5)
SWEEP_BATCH_SIZE = 500
INTERRUPTED_REASON = "interrupted during sending (the worker stopped); retried"


class DeliveryOutcome(enum.StrEnum):
    SENT = "sent"
    RETRY = "retry"  # transient failure, status failed, next_attempt_at set
    DEAD = "dead"
    SKIPPED = "skipped"  # not claimable: sent, dead, or another worker has it


def _message_id_domain() -> str:
    sender = settings.CALENDAR_INVITATION_FROM_EMAIL
    domain = sender.rpartition("@")[2].strip(" >") if "@" in sender else ""
    return domain or urlsplit(settings.APP_URL).hostname or "convoke.invalid"


def message_id_new() -> str:
    """A fresh RFC 5322 Message-ID (section 3.6.4): unique, stable once stored."""
    return f"<{uuid.uuid4().hex}@{_message_id_domain()}>"


def _enqueue_on_commit(delivery_id: int) -> None:
    from invitations.tasks import delivery_send_task

    # Like Task.delay_on_commit, but robust: the delivery is already committed, so a broker
    # that refuses the task must not turn an accepted callback into an error. The sweep
    # enqueues it after PENDING_ENQUEUE_GRACE.
    transaction.on_commit(partial(delivery_send_task.delay, delivery_id), robust=True)


def delivery_create(
    *, message: SchedulingMessage, recipient: str, transport: DeliveryTransport | str
) -> Delivery:
    """Store the delivery of ``message`` to ``recipient``; it is sent after the commit."""
    now = timezone.now()
    delivery = Delivery.objects.create(
        message=message,
        recipient=recipient,
        transport=DeliveryTransport(transport),
        status=DeliveryStatus.PENDING,
        next_attempt_at=now + PENDING_ENQUEUE_GRACE,
        message_id_header=message_id_new(),
    )
    _enqueue_on_commit(delivery.pk)
    return delivery


def delivery_retry_delay(*, attempt: int) -> dt.timedelta:
    """How long to wait after failed attempt number ``attempt`` (1-based).

    ``min(BASE * 2**(attempt - 1), MAX)`` seconds, multiplied by a random factor in
    ``[1 - JITTER, 1 + JITTER]`` so that deliveries that failed together (a relay outage)
    do not come back together.
    """
    base = settings.DELIVERY_RETRY_BASE_SECONDS
    delay = min(settings.DELIVERY_RETRY_MAX_SECONDS, base * 2 ** max(attempt - 1, 0))
    jitter = settings.DELIVERY_RETRY_JITTER
    if jitter:
        delay *= 1 + random.uniform(-jitter, jitter)
    return dt.timedelta(seconds=max(delay, 0.0))


def _previous_body(message: SchedulingMessage, recipient: str) -> bytes | None:
    """The body of the last REQUEST this recipient got for the same event, if any."""
    if message.method != ItipMethod.REQUEST:
        return None
    previous = (
        SchedulingMessage.objects.filter(
            uid=message.uid,
            recipient=recipient,
            method=ItipMethod.REQUEST,
            recurrence_id=message.recurrence_id,
            pk__lt=message.pk,
        )
        .order_by("-pk")
        .values_list("body", flat=True)
        .first()
    )
    return bytes(previous) if previous is not None else None


def delivery_email_build(*, delivery: Delivery) -> EmailMessage:
    """The complete email for ``delivery`` (not sent).

    Raises :class:`~invitations.emails.EmailNotRenderable` (a ``ValueError``) with a reason
    for operators when the stored message cannot be rendered; that cannot get better by
    retrying.
    """
    from invitations.emails import email_build

    message = delivery.message
    # The language and time zone are left to email_build: the recipient's stored
    # preferences, else the organizer's, else English and the event's zone.
    return email_build(
        body=bytes(message.body),
        method=message.method,
        sender=message.sender,
        recipient=delivery.recipient,
        message_id=delivery.message_id_header,
        previous_body=_previous_body(message, delivery.recipient),
    )


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


def _delivery_record_failure(delivery: Delivery, attempt: int, error: SendError) -> DeliveryOutcome:
    now = timezone.now()
    permanent = isinstance(error, PermanentSendError)
    if permanent or attempt >= settings.DELIVERY_MAX_ATTEMPTS:
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
        "delivery failed delivery=%s message=%s transport=%s attempt=%d outcome=%s reason=%s",
        delivery.pk,
        delivery.message_id,
        delivery.transport,
        attempt,
        outcome,
        error.reason,
    )
    counter_increment("convoke_deliveries", transport=delivery.transport, outcome=str(outcome))
    return outcome


def delivery_send(*, delivery_id: int) -> DeliveryOutcome:
    """Claim, render and send one delivery; record the outcome.

    Returns ``SKIPPED`` without side effects when the delivery is not claimable (already
    sent or dead, or being sent by another worker right now).
    """
    if not _delivery_claim(delivery_id):
        logger.info("delivery not claimable delivery=%s", delivery_id)
        return DeliveryOutcome.SKIPPED
    delivery = Delivery.objects.select_related("message").get(pk=delivery_id)
    attempt = delivery.attempts
    try:
        email = delivery_email_build(delivery=delivery)
    except EmailNotRenderable as exc:  # permanent: dead at once, with the reason
        return _delivery_record_failure(delivery, attempt, PermanentSendError(exc.reason))
    try:
        result = transport_for(delivery.transport).send(
            email=email, sender=delivery.message.sender, recipient=delivery.recipient
        )
    except SendError as exc:
        return _delivery_record_failure(delivery, attempt, exc)
    except SoftTimeLimitExceeded:  # only transport failures are transient (DESIGN.md 1.5)
        return _delivery_record_failure(
            delivery, attempt, TransientSendError("sending outlasted the worker's time limit")
        )
    now = timezone.now()
    updated = Delivery.objects.filter(
        pk=delivery.pk, status=DeliveryStatus.SENDING, attempts=attempt
    ).update(
        status=DeliveryStatus.SENT,
        sent_at=now,
        provider_message_id=result.provider_message_id[:255],
        last_error="",
        updated_at=now,
    )
    if not updated:
        # The sweep took this attempt for a dead worker's while it was still sending.
        logger.warning("delivery sent after being presumed lost delivery=%s", delivery.pk)
        Delivery.objects.filter(pk=delivery.pk).exclude(status=DeliveryStatus.SENT).update(
            status=DeliveryStatus.SENT,
            sent_at=now,
            provider_message_id=result.provider_message_id[:255],
            last_error="",
            updated_at=now,
        )
    logger.info(
        "delivery sent delivery=%s message=%s transport=%s attempt=%d",
        delivery.pk,
        delivery.message_id,
        delivery.transport,
        attempt,
    )
    counter_increment("convoke_deliveries", transport=delivery.transport, outcome="sent")
    return DeliveryOutcome.SENT


def delivery_crash_record(*, delivery_id: int, reason: str) -> None:
    """Record an unexpected error of an attempt in progress as a transient failure."""
    delivery = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENDING).first()
    if delivery is not None:
        _delivery_record_failure(delivery, delivery.attempts, TransientSendError(reason))


def delivery_time_limit_record(*, delivery_id: int) -> None:
    """The worker's hard time limit ended an attempt in progress: dead at once (DESIGN.md
    1.5). Rendering is bounded and every transport has a timeout below the limit, so an
    attempt that reaches it would only reach it again."""
    delivery = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENDING).first()
    if delivery is not None:
        reason = (
            f"stopped by the worker's hard time limit ({settings.TASK_TIME_LIMIT_SECONDS:g} s): "
            "the event is too expensive to render"
        )
        _delivery_record_failure(delivery, delivery.attempts, PermanentSendError(reason))


@dataclass(frozen=True)
class SweepResult:
    interrupted: int  # stuck in sending, now failed (to retry) or dead
    enqueued: list[int]


def deliveries_sweep(
    *, now: dt.datetime | None = None, batch_size: int = SWEEP_BATCH_SIZE
) -> SweepResult:
    """Enqueue every due delivery; recover those a dead worker left in ``sending``."""
    from invitations.tasks import delivery_send_task

    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.DELIVERY_SENDING_TIMEOUT_SECONDS)
    stuck = Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lte=cutoff)
    last_chance = Q(attempts__gte=settings.DELIVERY_MAX_ATTEMPTS)
    interrupted = stuck.exclude(last_chance).update(
        status=DeliveryStatus.FAILED, next_attempt_at=now, last_error=INTERRUPTED_REASON
    )
    interrupted += stuck.filter(last_chance).update(
        status=DeliveryStatus.DEAD,
        next_attempt_at=None,
        last_error="interrupted during sending on the last allowed attempt",
    )
    if interrupted:
        logger.warning("deliveries interrupted during sending count=%d", interrupted)

    due_ids = list(
        Delivery.objects.filter(status__in=CLAIMABLE_STATUSES, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    if due_ids:
        Delivery.objects.filter(pk__in=due_ids, status__in=CLAIMABLE_STATUSES).update(
            next_attempt_at=now + SWEEP_LEASE
        )
    enqueued: list[int] = []
    for delivery_id in due_ids:
        delivery_send_task.delay(delivery_id)
        enqueued.append(delivery_id)
    if enqueued:
        logger.info("deliveries enqueued by the sweep count=%d", len(enqueued))
    return SweepResult(interrupted=interrupted, enqueued=enqueued)


@dataclass(frozen=True)
class RetryItem:
    delivery_id: int
    previous_status: str
    attempts: int
    last_error: str
    retried: bool
    note: str = ""


RETRYABLE_STATUSES = (DeliveryStatus.FAILED, DeliveryStatus.DEAD, DeliveryStatus.PENDING)


def deliveries_retry(
    *,
    ids: Iterable[int] | None = None,
    dead: bool = False,
    since: dt.datetime | None = None,
    dry_run: bool = False,
) -> list[RetryItem]:
    """Send deliveries again now, on an operator's request.

    Without ``ids``: every ``failed`` delivery (waiting for its next attempt), or with
    ``dead`` every dead one. With ``ids``: those deliveries, when they are failed, dead or
    pending (a sent delivery is never sent again). ``since`` keeps those created at or after
    it. A dead delivery starts over with a full budget of attempts. With ``dry_run`` nothing
    changes. Returns one item per delivery considered, in id order.
    """
    queryset = Delivery.objects.all()
    if ids is not None:
        queryset = queryset.filter(pk__in=list(ids))
    else:
        queryset = queryset.filter(status=DeliveryStatus.DEAD if dead else DeliveryStatus.FAILED)
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    rows = list(queryset.order_by("pk").values_list("pk", "status", "attempts", "last_error"))
    items: list[RetryItem] = []
    now = timezone.now()
    for pk, status, attempts, last_error in rows:
        if status not in RETRYABLE_STATUSES:
            items.append(
                RetryItem(pk, status, attempts, last_error, retried=False, note=f"is {status}")
            )
            continue
        if dry_run:
            items.append(RetryItem(pk, status, attempts, last_error, retried=False, note="dry run"))
            continue
        with transaction.atomic():
            updated = Delivery.objects.filter(pk=pk, status=status).update(
                status=DeliveryStatus.PENDING,
                attempts=0 if status == DeliveryStatus.DEAD else attempts,
                next_attempt_at=now + PENDING_ENQUEUE_GRACE,
                updated_at=now,
            )
            if updated:
                _enqueue_on_commit(pk)
        note = "" if updated else "changed meanwhile"
        items.append(RetryItem(pk, status, attempts, last_error, retried=bool(updated), note=note))
        if updated:
            logger.info("delivery retry requested delivery=%s from=%s", pk, status)
    return items


MARK_DEAD_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)
MARKED_DEAD_REASON = "marked dead by an operator"


def deliveries_mark_dead(*, ids: Iterable[int]) -> list[RetryItem]:
    """Stop trying: move pending or failed deliveries to ``dead``, on an operator's request.

    A delivery being sent right now, already sent or already dead is left alone (its item
    says why). The move is one conditional UPDATE per delivery, so it never races a worker's
    claim. Returns one item per existing delivery, in id order; ``retried`` means "marked".
    """
    rows = list(
        Delivery.objects.filter(pk__in=list(ids))
        .order_by("pk")
        .values_list("pk", "status", "attempts", "last_error")
    )
    items: list[RetryItem] = []
    now = timezone.now()
    for pk, status, attempts, last_error in rows:
        if status not in MARK_DEAD_STATUSES:
            items.append(
                RetryItem(pk, status, attempts, last_error, retried=False, note=f"is {status}")
            )
            continue
        reason = f"{MARKED_DEAD_REASON}; last error: {last_error}" if last_error else ""
        updated = Delivery.objects.filter(pk=pk, status=status).update(
            status=DeliveryStatus.DEAD,
            next_attempt_at=None,
            last_error=(reason or MARKED_DEAD_REASON)[:500],
            updated_at=now,
        )
        note = "" if updated else "changed meanwhile"
        items.append(RetryItem(pk, status, attempts, last_error, retried=bool(updated), note=note))
        if updated:
            logger.info("delivery marked dead delivery=%s from=%s", pk, status)
    return items
