"""Sending the outbox: claim, build, hand to the transport, record the outcome.

Two ways in, one set of rules:

- :func:`deliveries_send` is how new deliveries leave: a worker claims the oldest pending
  ones in batches (one statement each, :mod:`.claims`), builds their emails with what the
  batch needs read at once (:mod:`.build`: no parse, no query per email), hands them to
  sessions to the relay or the Messages API (:mod:`invitations.transports.sessions`: one
  connection carries message after message; a slow relay is waited on by up to
  ``EMAIL_MAX_SESSIONS`` sessions at once) and records the outcomes in bulk
  (:mod:`.outcomes`) as they come back. It goes on while deliveries are pending, for at
  most ``DELIVERY_BATCH_SECONDS``.
- :func:`delivery_send` sends one delivery, ``pending`` or ``failed``: a retry the sweep
  enqueued, an operator's retry.

Either way the claim is conditional (exactly one worker sends a delivery), the Message-ID is
the delivery's own on every attempt, a delivery that cannot be rendered is dead at once
(retrying cannot change the stored content), one whose reason went away is ``skipped``, and
only transport failures are retried (docs/design.md 1.5).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone

from calendars.logs import exception_where
from invitations.emails import EmailNotRenderable
from invitations.models import Delivery, DeliveryKind, DeliveryStatus, DeliveryTransport
from invitations.notices import DeliveryNotNeeded
from invitations.services.build import BatchInputs, batch_inputs, delivery_email_build
from invitations.services.claims import deliveries_claim, delivery_claim
from invitations.services.create import PENDING_ENQUEUE_GRACE
from invitations.services.nudge import deliveries_nudge
from invitations.services.outcomes import (
    DeliveryOutcome,
    Outcome,
    delivery_retry_delay,
    outcomes_record,
)
from invitations.transports import (
    PermanentSendError,
    SendError,
    TransientSendError,
    transport_for,
)
from invitations.transports.sessions import Outgoing, Sent, SessionPool, session_pool

logger = logging.getLogger(__name__)

__all__ = [
    "DeliveryOutcome",
    "SendSummary",
    "deliveries_send",
    "delivery_crash_record",
    "delivery_email_build",
    "delivery_retry_delay",
    "delivery_send",
    "delivery_time_limit_record",
]

# While sends are in flight and the outbox had nothing more, look again this often (so that
# a slow relay's trickle of free sessions is not one claim per message).
CLAIM_INTERVAL_SECONDS = 0.05
MAX_CLAIM_INTERVAL_SECONDS = 0.4
# How long to wait for an outcome before looking at the outbox again.
RESULT_WAIT_SECONDS = 0.5
# A worker that found nothing pending for this long stops (a nudge brings the next one).
LINGER_SECONDS = 1.0
# Outcomes are recorded together, at the latest this long after the first came back.
RECORD_INTERVAL_SECONDS = 0.1
# The run's pools: the Messages API's, and the mailer's whatever its route's label.
MESSAGES = str(DeliveryTransport.MESSAGES)
MAILER = "mailer"


class RenderTimeLimit(Exception):
    """The worker's soft time limit interrupted a rendering: its outcome (dead), and stop."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__("rendering interrupted by the soft time limit")
        self.outcome = outcome


def _render_failure(delivery: Delivery, exc: Exception) -> Outcome:
    if isinstance(exc, DeliveryNotNeeded):
        return Outcome(delivery, skipped=exc.reason)
    if isinstance(exc, EmailNotRenderable):  # permanent: dead at once, with the reason
        return Outcome(delivery, error=PermanentSendError(exc.reason))
    # A rendering failure is permanent: the stored content will not change.
    what = "iCalendar body" if delivery.kind == DeliveryKind.ITIP else "email"
    return Outcome(delivery, error=PermanentSendError(f"the stored {what} cannot be rendered"))


def _build(delivery: Delivery, inputs: BatchInputs | None) -> EmailMessage | Outcome:
    """The email, or the outcome that ends this attempt without sending. Raises
    :class:`RenderTimeLimit` (after nothing) when the worker's soft time limit interrupted
    the rendering: the delivery is dead, and the caller must stop."""
    try:
        return delivery_email_build(delivery=delivery, inputs=inputs)
    except (DeliveryNotNeeded, ValueError) as exc:  # EmailNotRenderable is a ValueError
        outcome = _render_failure(delivery, exc)
        if isinstance(exc.__cause__, SoftTimeLimitExceeded):
            raise RenderTimeLimit(outcome) from exc
        return outcome


def delivery_send(*, delivery_id: int) -> DeliveryOutcome:
    """Claim, build and send one delivery; record the outcome.

    Returns ``SKIPPED`` without side effects when the delivery is not claimable (already
    sent or dead, or being sent by another worker right now).
    """
    delivery = delivery_claim(delivery_id=delivery_id)
    if delivery is None:
        logger.info("delivery not claimable delivery=%s", delivery_id)
        return DeliveryOutcome.SKIPPED
    try:
        built = _build(delivery, None)
    except RenderTimeLimit as stop:
        return _single_record(stop.outcome)
    if isinstance(built, Outcome):
        return _single_record(built)
    try:
        result = transport_for(delivery.transport).send(
            email=built, sender=delivery.sender, recipient=delivery.recipient
        )
    except SendError as exc:
        return _single_record(Outcome(delivery, error=exc))
    except SoftTimeLimitExceeded:  # only transport failures are transient (docs/design.md 1.5)
        error = TransientSendError("sending outlasted the worker's time limit")
        return _single_record(Outcome(delivery, error=error))
    logger.info(
        "delivery sent delivery=%s kind=%s transport=%s attempt=%d",
        delivery.pk,
        delivery.kind,
        delivery.transport,
        delivery.attempts,
    )
    return _single_record(Outcome(delivery, result=result))


def _single_record(outcome: Outcome) -> DeliveryOutcome:
    totals = outcomes_record([outcome])
    return next(iter(totals)) if totals else DeliveryOutcome.SKIPPED


# --- batches ------------------------------------------------------------------------------------


@dataclass
class SendSummary:
    """What one call of :func:`deliveries_send` did."""

    claimed: int = 0
    claims: int = 0
    outcomes: Counter[DeliveryOutcome] = field(default_factory=Counter)
    released: int = 0
    peak_sessions: dict[str, int] = field(default_factory=dict)


class _Run:
    """One :func:`deliveries_send`: the pools, the claimed deliveries not yet recorded."""

    def __init__(self, summary: SendSummary, *, batch_size: int) -> None:
        self.summary = summary
        self.batch_size = batch_size
        self.pools: dict[str, SessionPool] = {}
        self.waiting: dict[int, Delivery] = {}  # submitted, outcome not back yet
        self.unrecorded: list[Outcome] = []  # back, not recorded yet
        self.unrecorded_since = 0.0

    def pool(self, transport: str) -> SessionPool:
        """The pool of a ``Delivery.transport`` value: the Messages API's, or the mailer's
        (one pool whatever route the mailer is labelled by: smtp, brevo, file)."""
        kind = MESSAGES if transport == MESSAGES else MAILER
        if kind not in self.pools:
            limit = (
                settings.MESSAGES_API_MAX_CONNECTIONS
                if kind == MESSAGES
                else settings.EMAIL_MAX_SESSIONS
            )
            self.pools[kind] = session_pool(transport, max_sessions=limit)
        return self.pools[kind]

    @property
    def room(self) -> int:
        """How many more emails the sessions can take now (at least a batch in all)."""
        return self.pool(MAILER).free(at_least=self.batch_size) - sum(
            pool.in_flight for kind, pool in self.pools.items() if kind != MAILER
        )

    def dispatch(self, deliveries: list[Delivery]) -> None:
        inputs = batch_inputs(deliveries)
        ended: list[Outcome] = []
        try:
            for index, delivery in enumerate(deliveries):
                try:
                    built = _build(delivery, inputs)
                except RenderTimeLimit as stop:
                    ended.append(stop.outcome)
                    self._release(deliveries[index + 1 :])
                    raise
                except Exception as exc:
                    # A batch's boundary for one delivery (docs/style.md rule 12): recorded
                    # as a task's boundary records it, and the batch goes on.
                    reason = f"internal error {type(exc).__name__} at {exception_where(exc)}"
                    logger.error("delivery build crashed delivery=%s error=%s", delivery.pk, reason)
                    ended.append(Outcome(delivery, error=TransientSendError(reason)))
                    continue
                if isinstance(built, Outcome):
                    ended.append(built)
                    continue
                self.waiting[delivery.pk] = delivery
                self.pool(delivery.transport).submit(
                    Outgoing(delivery.pk, built, delivery.sender, delivery.recipient)
                )
        finally:
            self._ended(ended)

    def _ended(self, outcomes: list[Outcome]) -> None:
        """Record outcomes in bulk: when a batch's worth is waiting, or the oldest has waited
        ``RECORD_INTERVAL_SECONDS`` (a worker killed meanwhile would send those again)."""
        if outcomes:
            if not self.unrecorded:
                self.unrecorded_since = time.monotonic()
            self.unrecorded += outcomes
        if self.unrecorded and (
            len(self.unrecorded) >= self.batch_size
            or time.monotonic() - self.unrecorded_since >= RECORD_INTERVAL_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        if self.unrecorded:
            outcomes, self.unrecorded = self.unrecorded, []
            self.summary.outcomes.update(outcomes_record(outcomes))

    def collect(self, *, wait: float = 0.0) -> None:
        """Take the outcomes that came back (waiting up to ``wait`` s for the first)."""
        sent: list[Sent] = []
        for pool in self.pools.values():
            if pool.in_flight:
                sent += pool.results(wait=wait if not sent else 0.0)
        outcomes = []
        for item in sent:
            delivery = self.waiting.pop(item.delivery_id)
            if item.result is not None:
                outcomes.append(Outcome(delivery, result=item.result))
            else:
                error = item.error or TransientSendError(item.crash)
                outcomes.append(Outcome(delivery, error=error))
        self._ended(outcomes)

    @property
    def in_flight(self) -> int:
        return sum(pool.in_flight for pool in self.pools.values())

    def pause(self, seconds: float) -> None:
        """Wait ``seconds``, recording the outcomes that come back meanwhile."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.in_flight:
                self.collect(wait=left)
            else:
                time.sleep(left)

    def _release(self, deliveries: list[Delivery]) -> None:
        """Give back claimed deliveries that were never tried: pending again, the attempt
        not counted (one statement per attempt number)."""
        by_attempt: dict[int, list[int]] = {}
        for delivery in deliveries:
            by_attempt.setdefault(delivery.attempts, []).append(delivery.pk)
        now = timezone.now()
        for attempts, ids in by_attempt.items():
            Delivery.objects.filter(
                pk__in=ids, status=DeliveryStatus.SENDING, attempts=attempts
            ).update(
                status=DeliveryStatus.PENDING,
                attempts=attempts - 1,
                claimed_at=None,
                next_attempt_at=now + PENDING_ENQUEUE_GRACE,
                updated_at=now,
            )

    def finish(self, *, deadline: float) -> int:
        """Give back the emails no session started, wait for the others (until
        ``deadline``), record them and close the sessions. Returns how many were given back."""
        unstarted = [item for pool in self.pools.values() for item in pool.cancel_waiting()]
        self._release([self.waiting.pop(item.delivery_id) for item in unstarted])
        while self.in_flight and time.monotonic() < deadline:
            self.collect(wait=min(RESULT_WAIT_SECONDS, max(0.0, deadline - time.monotonic())))
        self.flush()
        for kind, pool in self.pools.items():
            pool.close(timeout=max(0.0, deadline - time.monotonic()))
            self.summary.peak_sessions[kind] = pool.peak_sessions
        if self.waiting:
            # Still with the relay: left in `sending`; the sweep retries them after
            # DELIVERY_SENDING_TIMEOUT_SECONDS if their outcome never comes.
            logger.warning(
                "deliveries left in sending at the end of a batch count=%d", len(self.waiting)
            )
        return len(unstarted)


def _send_timeout() -> float:
    """The longest one email may take with the relay or the Messages API."""
    mailer: dict[str, Any] = settings.MAILERS.get("default", {})
    timeout = mailer.get("OPTIONS", {}).get("timeout") or 30
    return max(float(timeout), settings.MESSAGES_API_TIMEOUT_SECONDS)


def deliveries_send(
    *,
    batch_size: int | None = None,
    seconds: float | None = None,
    linger: float = LINGER_SECONDS,
    renudge: bool = True,
) -> SendSummary:
    """Send pending deliveries, oldest first, in batches, for up to ``seconds``
    (``DELIVERY_BATCH_SECONDS``): claim what is pending, up to what the sessions can take,
    build and hand over each email, record the outcomes as they come back; when nothing is
    pending, look again every ``CLAIM_INTERVAL_SECONDS`` (so that a stream of callbacks is
    sent in batches rather than one by one) and stop after ``linger`` seconds without any.
    Then give back the emails no session started, wait for the others and record them; when
    deliveries are left pending, ``renudge`` asks for the next task (:mod:`.nudge`)."""
    batch_size = batch_size or settings.DELIVERY_BATCH_SIZE
    seconds = settings.DELIVERY_BATCH_SECONDS if seconds is None else seconds
    summary = SendSummary()
    run = _Run(summary, batch_size=batch_size)
    started = time.monotonic()
    idle_since: float | None = None
    interval = CLAIM_INTERVAL_SECONDS
    more = False  # deliveries may be left pending
    try:
        while True:
            if time.monotonic() - started >= seconds:
                more = True  # out of time: what is still pending needs the next task
                break
            run.collect()
            room = min(batch_size, run.room)
            if room <= 0 or (run.in_flight and room < batch_size // 2):
                # Claim in batches: wait until the sessions can take half a batch more.
                run.collect(wait=RESULT_WAIT_SECONDS)
                continue
            deliveries = deliveries_claim(limit=room)
            summary.claims += 1
            summary.claimed += len(deliveries)
            if deliveries:
                idle_since, interval = None, CLAIM_INTERVAL_SECONDS
                run.dispatch(deliveries)
            elif not run.in_flight:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= linger:
                    break
            if len(deliveries) < room:
                # The outbox is empty for now: let it fill a little, and look less often
                # while it stays empty.
                run.pause(interval)
                if not deliveries:
                    interval = min(2 * interval, MAX_CLAIM_INTERVAL_SECONDS)
    except (RenderTimeLimit, SoftTimeLimitExceeded):
        logger.warning("delivery batch stopped by the worker's soft time limit")
        more = True
    finally:
        summary.released = run.finish(deadline=time.monotonic() + _send_timeout() + 5.0)
    if renudge and (more or summary.released):
        deliveries_nudge()
    if summary.claimed:
        logger.info(
            "delivery batch claimed=%d claims=%d outcomes=%s",
            summary.claimed,
            summary.claims,
            dict(summary.outcomes),
        )
    return summary


# --- what a task's boundary records -------------------------------------------------------------


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
        outcomes_record([Outcome(delivery, error=PermanentSendError(reason))])


def delivery_crash_record(*, delivery_id: int, reason: str) -> None:
    """Record an unexpected error of an attempt in progress as a transient failure."""
    delivery = Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENDING).first()
    if delivery is not None:
        outcomes_record([Outcome(delivery, error=TransientSendError(reason))])
