"""Celery tasks of the invitations app: thin wrappers that take ids and call one service.

The services enqueue these tasks (after their commit), so the tasks import the services
inside their bodies: the tasks module is the layer above.
"""

from __future__ import annotations

import logging
import traceback

from celery import shared_task
from celery.exceptions import TimeLimitExceeded

from calendars.celery import app
from calendars.retry import retry_policy

logger = logging.getLogger(__name__)


def _where(exc: BaseException) -> str:
    """``file:line`` of the innermost frame: enough to find a bug, free of personal data."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    frame = frames[-1]
    return f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"


class DeliveryTask(app.Task):  # type: ignore[misc,name-defined]
    """The delivery task's class: when the worker's hard time limit ends an attempt, Celery
    calls :meth:`on_failure` in the worker's main process (the process that ran the attempt
    is gone), which records the delivery as dead at once instead of leaving it in ``sending``
    for the sweep to retry, and hang, again."""

    def on_failure(  # type: ignore[no-untyped-def]
        self, exc, task_id, args, kwargs, einfo
    ) -> None:
        if isinstance(exc, TimeLimitExceeded) and args:
            from invitations.services import delivery_time_limit_record

            delivery_time_limit_record(delivery_id=int(args[0]))


@shared_task(
    base=DeliveryTask,
    name="invitations.tasks.delivery_send_task",
    acks_late=True,
    ignore_result=True,
)
def delivery_send_task(delivery_id: int) -> str:
    """Send one delivery. Transient failures are retried by the sweep, not by Celery."""
    from invitations.services import delivery_crash_record, delivery_send

    try:
        return str(delivery_send(delivery_id=delivery_id))
    except Exception as exc:
        # Task boundary (docs/style.md rule 12). The exception text may quote an address, so
        # only its type and location are logged and stored.
        reason = f"internal error {type(exc).__name__} at {_where(exc)}"
        logger.error("delivery task crashed delivery=%s error=%s", delivery_id, reason)
        delivery_crash_record(delivery_id=delivery_id, reason=reason)
        return "error"


@shared_task(name="invitations.tasks.deliveries_sweep_task", ignore_result=True)
def deliveries_sweep_task() -> int:
    """Periodic (Celery beat): enqueue due retries and recover interrupted sends, and the
    inbound REPLYs whose first attempt was never enqueued."""
    from invitations.inbound import inbound_replies_sweep
    from invitations.services import deliveries_sweep

    result = deliveries_sweep()
    inbound_replies_sweep()
    return len(result.enqueued)


@shared_task(
    name="invitations.tasks.inbound_reply_apply_task",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=None,
)
def inbound_reply_apply_task(self, reply_id: int) -> str:  # type: ignore[no-untyped-def]
    """Apply one stored inbound REPLY to the organizer's event on the CalDAV server. A
    CalDAV outage is retried under the ``inbound_reply`` policy (about a day), then the
    stored REPLY is marked failed where operators see it."""
    from invitations.inbound import InboundReplyUnavailable, inbound_reply_apply, inbound_reply_fail

    try:
        return inbound_reply_apply(reply_id=reply_id)
    except InboundReplyUnavailable as exc:
        policy = retry_policy("inbound_reply")
        attempts = self.request.retries + 1
        if policy.exhausted(attempts=attempts):
            inbound_reply_fail(reply_id=reply_id, reason="CalDAV server unavailable; gave up")
            return "failed"
        raise self.retry(exc=exc, countdown=policy.delay(failures=attempts)) from exc
