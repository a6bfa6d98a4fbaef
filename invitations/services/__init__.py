"""The outbox: every email Convoke sends (docs/architecture.md, "the outbox").

The life of a delivery:

1. :func:`delivery_create` (:mod:`.create`) stores it (status ``pending``) in the caller's
   transaction; once that transaction commits, :func:`deliveries_nudge` (:mod:`.nudge`)
   makes sure :func:`invitations.tasks.deliveries_send_task` is on its way.
2. :func:`deliveries_send` (:mod:`.send`) claims pending deliveries in batches
   (:mod:`.claims`), builds their emails (:mod:`.build`), sends them over sessions kept open
   (:mod:`invitations.transports.sessions`) and records the outcomes in bulk
   (:mod:`.outcomes`): ``sent``, ``failed`` to retry after the ``delivery`` retry policy's
   delay, ``dead``, or ``skipped`` when its reason went away. :func:`delivery_send` does the
   same for one delivery (a retry).
3. :func:`deliveries_sweep` (:mod:`.sweep`) enqueues what is due: retries, lost enqueues,
   sends interrupted by a dead worker.
4. :func:`deliveries_retry` and :func:`deliveries_mark_dead` (:mod:`.operators`) are the
   operators' levers (``manage.py retry_deliveries``, the admin).
"""

from invitations.services.build import BatchInputs, batch_inputs, delivery_email_build
from invitations.services.claims import deliveries_claim, delivery_claim
from invitations.services.create import (
    PENDING_ENQUEUE_GRACE,
    ItipContent,
    delivery_create,
    delivery_new,
    message_id_for,
    message_id_new,
    transport_choose,
)
from invitations.services.nudge import (
    deliveries_nudge,
    deliveries_nudge_clear,
    deliveries_nudge_on_commit,
)
from invitations.services.operators import (
    MARKED_DEAD_REASON,
    RetryItem,
    deliveries_mark_dead,
    deliveries_retry,
)
from invitations.services.outcomes import (
    DeliveryOutcome,
    Outcome,
    delivery_retry_delay,
    outcomes_record,
)
from invitations.services.send import (
    SendSummary,
    deliveries_send,
    delivery_crash_record,
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
    "BatchInputs",
    "DeliveryOutcome",
    "ItipContent",
    "Outcome",
    "RetryItem",
    "SendSummary",
    "SweepResult",
    "batch_inputs",
    "deliveries_claim",
    "deliveries_mark_dead",
    "deliveries_nudge",
    "deliveries_nudge_clear",
    "deliveries_nudge_on_commit",
    "deliveries_retry",
    "deliveries_send",
    "deliveries_sweep",
    "delivery_claim",
    "delivery_crash_record",
    "delivery_create",
    "delivery_email_build",
    "delivery_new",
    "delivery_retry_delay",
    "delivery_send",
    "delivery_time_limit_record",
    "message_id_for",
    "message_id_new",
    "outcomes_record",
    "transport_choose",
]
