"""Celery tasks of the invitations app: thin wrappers that take ids and call one service."""

from __future__ import annotations

import logging
import traceback

from celery import shared_task

from invitations.services import deliveries_sweep, delivery_crash_record, delivery_send

logger = logging.getLogger(__name__)


def _where(exc: BaseException) -> str:
    """``file:line`` of the innermost frame: enough to find a bug, free of personal data."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    frame = frames[-1]
    return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"


@shared_task(name="invitations.tasks.delivery_send_task", acks_late=True, ignore_result=True)
def delivery_send_task(delivery_id: int) -> str:
    """Send one delivery. Transient failures are retried by the sweep, not by Celery."""
    try:
        return str(delivery_send(delivery_id=delivery_id))
    except Exception as exc:
        # Task boundary (STYLE.md rule 12). The exception text may quote an address, so
        # only its type and location are logged and stored.
        reason = f"internal error {type(exc).__name__} at {_where(exc)}"
        logger.error("delivery task crashed delivery=%s error=%s", delivery_id, reason)
        delivery_crash_record(delivery_id=delivery_id, reason=reason)
        return "error"


@shared_task(name="invitations.tasks.deliveries_sweep_task", ignore_result=True)
def deliveries_sweep_task() -> int:
    """Periodic (Celery beat): enqueue due retries and recover interrupted sends."""
    result = deliveries_sweep()
    return len(result.enqueued)
