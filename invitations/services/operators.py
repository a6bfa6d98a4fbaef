"""The operators' levers on the outbox: retry now, and stop trying (``manage.py
retry_deliveries`` and the deliveries admin)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from invitations.models import Delivery, DeliveryStatus
from invitations.services.create import PENDING_ENQUEUE_GRACE, delivery_enqueue_on_commit

logger = logging.getLogger(__name__)


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
                delivery_enqueue_on_commit(pk)
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
