"""The outbox: every email Convoke sends (docs/architecture.md, "the outbox").

The life of a delivery:

1. :func:`delivery_create` (:mod:`.create`) stores it (status ``pending``) in the caller's
   transaction and enqueues :func:`invitations.tasks.delivery_send_task` once that
   transaction commits (:func:`calendars.enqueue.enqueue_on_commit`).
2. :func:`delivery_send` (:mod:`.send`) claims, builds and sends it, and records the outcome:
   ``sent``, ``failed`` to retry after the ``delivery`` retry policy's delay, ``dead``, or
   ``skipped`` when its reason went away.
3. :func:`deliveries_sweep` (:mod:`.sweep`) enqueues what is due: retries, lost enqueues,
   sends interrupted by a dead worker.
4. :func:`deliveries_retry` and :func:`deliveries_mark_dead` (:mod:`.operators`) are the
   operators' levers (``manage.py retry_deliveries``, the admin).
"""

from invitations.services.create import (
    PENDING_ENQUEUE_GRACE,
    ItipContent,
    delivery_create,
    message_id_for,
    message_id_new,
    transport_choose,
)
from invitations.services.operators import (
    MARKED_DEAD_REASON,
    RetryItem,
    deliveries_mark_dead,
    deliveries_retry,
)
from invitations.services.send import (
    DeliveryOutcome,
    delivery_crash_record,
    delivery_email_build,
    delivery_retry_delay,
    delivery_send,
    delivery_time_limit_record,
)
from invitations.services.sweep import (
    INTERRUPTED_REASON,
    SWEEP_BATCH_SIZE,
    SWEEP_LEASE,
    SweepResult,
    deliveries_sweep,
)

__all__ = [
    "INTERRUPTED_REASON",
    "MARKED_DEAD_REASON",
    "PENDING_ENQUEUE_GRACE",
    "SWEEP_BATCH_SIZE",
    "SWEEP_LEASE",
    "DeliveryOutcome",
    "ItipContent",
    "RetryItem",
    "SweepResult",
    "deliveries_mark_dead",
    "deliveries_retry",
    "deliveries_sweep",
    "delivery_crash_record",
    "delivery_create",
    "delivery_email_build",
    "delivery_retry_delay",
    "delivery_send",
    "delivery_time_limit_record",
    "message_id_for",
    "message_id_new",
    "transport_choose",
]
