"""Recording what happened to claimed deliveries, in bulk.

An attempt ends ``sent``, ``failed`` (a transient error: retried after the ``delivery`` retry
policy's delay, :mod:`calendars.retry`), ``dead`` (a permanent error, or a transient one on
the last allowed attempt) or ``skipped`` (the email's reason went away). Every update is
conditional on the attempt still being the one claimed (``status = sending`` and the same
``attempts``), so a worker never overwrites a newer attempt; outcomes of the same kind are
written together: one ``UPDATE`` for every delivery sent in a batch, one per distinct
failure reason.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, DateTimeField, Value, When
from django.utils import timezone

from calendars.metrics import counter_increment
from calendars.retry import retry_policy
from invitations.models import Delivery, DeliveryStatus
from invitations.transports import PermanentSendError, SendError, SendResult

logger = logging.getLogger(__name__)


class DeliveryOutcome(enum.StrEnum):
    SENT = "sent"
    RETRY = "retry"  # transient failure, status failed, next_attempt_at set
    DEAD = "dead"
    SKIPPED = "skipped"  # not claimable (sent, dead, another worker has it), or not needed


@dataclass(frozen=True)
class Outcome:
    """The end of one attempt: ``result`` when sent, ``error`` when it failed, ``skipped``
    (a reason) when the email is not needed any more."""

    delivery: Delivery
    result: SendResult | None = None
    error: SendError | None = None
    skipped: str = ""


def delivery_retry_delay(*, attempt: int) -> dt.timedelta:
    """How long to wait after failed attempt number ``attempt`` (1-based): the ``delivery``
    retry policy, so that deliveries that failed together (a relay outage) do not come
    back together."""
    return dt.timedelta(seconds=retry_policy("delivery").delay(failures=attempt))


def _sent_record(outcomes: list[Outcome], now: dt.datetime) -> None:
    by_attempt: dict[int, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_attempt[outcome.delivery.attempts].append(outcome)
    for attempt, group in by_attempt.items():
        ids = [outcome.delivery.pk for outcome in group]
        provider_ids = {
            outcome.delivery.pk: outcome.result.provider_message_id[:255]
            for outcome in group
            if outcome.result is not None and outcome.result.provider_message_id
        }
        fields: dict[str, Any] = {
            "status": DeliveryStatus.SENT,
            "sent_at": now,
            "last_error": "",
            "updated_at": now,
            "provider_message_id": Case(
                *[When(pk=pk, then=Value(value)) for pk, value in provider_ids.items()],
                default=Value(""),
            )
            if provider_ids
            else "",
        }
        updated = Delivery.objects.filter(
            pk__in=ids, status=DeliveryStatus.SENDING, attempts=attempt
        ).update(**fields)
        if updated < len(ids):
            # The sweep took some of these attempts for a dead worker's while they were
            # being sent; they were sent all the same.
            logger.warning("deliveries sent after being presumed lost count=%d", len(ids) - updated)
            Delivery.objects.filter(pk__in=ids).exclude(status=DeliveryStatus.SENT).update(**fields)
        for pk in ids:
            logger.debug("delivery sent delivery=%s attempt=%d", pk, attempt)


def _failures_record(outcomes: list[Outcome], now: dt.datetime) -> Counter[tuple[str, str]]:
    policy = retry_policy("delivery")
    groups: dict[tuple[str, int, str], dict[int, dt.datetime | None]] = defaultdict(dict)
    counts: Counter[tuple[str, str]] = Counter()
    for outcome in outcomes:
        delivery, error = outcome.delivery, outcome.error
        assert error is not None
        attempt = delivery.attempts
        status: str
        if isinstance(error, PermanentSendError) or policy.exhausted(attempts=attempt):
            status, next_attempt_at, result = DeliveryStatus.DEAD, None, DeliveryOutcome.DEAD
        else:
            status = DeliveryStatus.FAILED
            next_attempt_at = now + delivery_retry_delay(attempt=attempt)
            result = DeliveryOutcome.RETRY
        groups[(status, attempt, error.reason)][delivery.pk] = next_attempt_at
        counts[(delivery.transport, str(result))] += 1
        log = logger.warning if result == DeliveryOutcome.RETRY else logger.error
        log(
            "delivery failed delivery=%s kind=%s transport=%s attempt=%d outcome=%s reason=%s",
            delivery.pk,
            delivery.kind,
            delivery.transport,
            attempt,
            result,
            error.reason,
        )
    for (status, attempt, reason), moments in groups.items():
        if status == DeliveryStatus.DEAD:
            next_attempt: Any = None
        else:
            next_attempt = Case(
                *[
                    When(pk=pk, then=Value(moment, output_field=DateTimeField()))
                    for pk, moment in moments.items()
                ],
                output_field=DateTimeField(),
            )
        Delivery.objects.filter(
            pk__in=list(moments), status=DeliveryStatus.SENDING, attempts=attempt
        ).update(status=status, next_attempt_at=next_attempt, last_error=reason, updated_at=now)
    return counts


def _skipped_record(outcomes: list[Outcome], now: dt.datetime) -> None:
    by_reason: dict[tuple[str, int], list[int]] = defaultdict(list)
    for outcome in outcomes:
        by_reason[(outcome.skipped[:500], outcome.delivery.attempts)].append(outcome.delivery.pk)
        logger.info(
            "delivery not needed delivery=%s kind=%s", outcome.delivery.pk, outcome.delivery.kind
        )
    for (reason, attempt), ids in by_reason.items():
        Delivery.objects.filter(pk__in=ids, status=DeliveryStatus.SENDING, attempts=attempt).update(
            status=DeliveryStatus.SKIPPED, last_error=reason, updated_at=now
        )


def outcomes_record(outcomes: Sequence[Outcome]) -> Counter[DeliveryOutcome]:
    """Record these attempts' ends (a few statements, however many outcomes) and count
    them in ``convoke_deliveries``. Returns how many ended each way."""
    now = timezone.now()
    sent = [outcome for outcome in outcomes if outcome.result is not None]
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    skipped = [outcome for outcome in outcomes if outcome.result is None and outcome.error is None]
    totals: Counter[DeliveryOutcome] = Counter()
    if sent:
        _sent_record(sent, now)
        per_transport = Counter(outcome.delivery.transport for outcome in sent)
        for transport, count in per_transport.items():
            counter_increment(
                "convoke_deliveries", count, transport=transport, outcome=str(DeliveryOutcome.SENT)
            )
        totals[DeliveryOutcome.SENT] = len(sent)
    if failed:
        for (transport, result), count in _failures_record(failed, now).items():
            counter_increment("convoke_deliveries", count, transport=transport, outcome=result)
            totals[DeliveryOutcome(result)] += count
    if skipped:
        _skipped_record(skipped, now)
        totals[DeliveryOutcome.SKIPPED] = len(skipped)
    return totals
