"""Handing work to the workers: one robust way, backed by a sweep (docs/architecture.md).

Every cross-process enqueue of Convoke goes through :func:`enqueue_on_commit` (or
:func:`enqueue` outside a transaction, as the sweeps do). The rule that makes it safe:

- the work is first *recorded* in the database, in the caller's transaction (a pending
  delivery, a booking whose ``publish_state`` is pending with ``publish_due_at`` set, a
  pending inbound reply, a channel lacking for a watched calendar, a dirty sync state);
- the task is only a nudge, sent after the commit. When the broker refuses it (down,
  full, a network hiccup), the refusal is logged and swallowed: the committed work stays
  recorded, the request that caused it still succeeds (never a 500 on a committed
  booking), and the periodic sweep of that kind of work finds it and enqueues it again.

Like Celery's ``delay_on_commit``, nothing is sent when the transaction rolls back.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Protocol

from django.db import transaction
from kombu.exceptions import KombuError

logger = logging.getLogger(__name__)

# What a broker client raises when it cannot take a message: kombu's own errors (its
# OperationalError among them), and the socket and file errors of a transport that does not
# wrap them (ConnectionError is an OSError).
BROKER_ERRORS: tuple[type[BaseException], ...] = (KombuError, OSError)


class Enqueueable(Protocol):
    """A Celery task, as far as enqueueing goes."""

    name: str

    def apply_async(self, args: Any = ..., kwargs: Any = ..., **options: Any) -> Any: ...


def enqueue(task: Enqueueable, *args: Any, countdown: float | None = None) -> bool:
    """Send ``task(*args)`` to the broker now; False (logged) when the broker refused it.

    Only for work already recorded in the database, which a sweep picks up again.
    """
    options: dict[str, Any] = {"countdown": countdown} if countdown else {}
    try:
        task.apply_async(args, **options)
    except BROKER_ERRORS as exc:
        # Never the exception text: a broker URL may carry a password.
        logger.warning(
            "enqueue failed task=%s error=%s; the sweep will pick the work up",
            task.name,
            type(exc).__name__,
        )
        return False
    return True


def enqueue_on_commit(task: Enqueueable, *args: Any, countdown: float | None = None) -> None:
    """After the current transaction commits (at once outside one), :func:`enqueue` the
    task. A broker error never reaches the caller: what was committed stays committed."""
    transaction.on_commit(partial(enqueue, task, *args, countdown=countdown), robust=True)
