"""The periodic sweep of the outbox (every ``DELIVERY_SWEEP_INTERVAL_SECONDS``, Celery beat).

It enqueues what is due: retries whose delay has passed, ``pending`` rows whose enqueue was
lost (a broker refusal after the commit, a worker restart), and rows stuck in ``sending``
because a worker died mid-send. Nothing depends on the broker keeping a task.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from calendars.enqueue import enqueue
from calendars.retry import retry_policy
from invitations.models import CLAIMABLE_STATUSES, Delivery, DeliveryStatus
from invitations.tasks import delivery_send_task

logger = logging.getLogger(__name__)

# After the sweep enqueues a due delivery it leaves it alone this long, so a backlog in the
# broker is not enqueued again on every sweep.
SWEEP_LEASE = dt.timedelta(minutes=5)
SWEEP_BATCH_SIZE = 500
INTERRUPTED_REASON = "interrupted during sending (the worker stopped); retried"


@dataclass(frozen=True)
class SweepResult:
    interrupted: int  # stuck in sending, now failed (to retry) or dead
    enqueued: list[int]


def deliveries_sweep(
    *, now: dt.datetime | None = None, batch_size: int = SWEEP_BATCH_SIZE
) -> SweepResult:
    """Enqueue every due delivery; recover those a dead worker left in ``sending``."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.DELIVERY_SENDING_TIMEOUT_SECONDS)
    stuck = Delivery.objects.filter(status=DeliveryStatus.SENDING, claimed_at__lte=cutoff)
    last_chance = Q(attempts__gte=retry_policy("delivery").max_attempts)
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
        if not enqueue(delivery_send_task, delivery_id):
            break  # the broker is down: the lease lapses and the next sweep tries again
        enqueued.append(delivery_id)
    if enqueued:
        logger.info("deliveries enqueued by the sweep count=%d", len(enqueued))
    return SweepResult(interrupted=interrupted, enqueued=enqueued)
