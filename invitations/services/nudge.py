"""Waking a worker for new deliveries, once per batch rather than once per email.

Every new delivery is recorded ``pending`` in its creator's transaction; after the commit,
:func:`deliveries_nudge` makes sure a :func:`invitations.tasks.deliveries_send_task` is on
its way, which sends every pending delivery in batches. When the cache is shared by every
process (``CACHE_URL``, Redis in production), a key with a lifetime marks "a task is queued
and has not started": while it is there, new deliveries need no task of their own, since
that task claims them when it starts; the task removes the key as it starts, before its first
claim, so a delivery committed after that claim finds the key gone and sends a task. Without
a shared cache (the embedded default) every commit sends its own task; the tasks that find
nothing left cost one claim each.

Nothing depends on the nudge: a lost one (a broker refusal, an expired key) leaves the
deliveries pending, where the periodic sweep finds them (:mod:`.sweep`).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from redis.exceptions import RedisError

from calendars.enqueue import enqueue
from invitations.tasks import deliveries_send_task

logger = logging.getLogger(__name__)

NUDGE_KEY = "convoke:deliveries:nudge"
# A queued task that has not started after this long is presumed lost: the next delivery
# sends another.
NUDGE_SECONDS = 30

_PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)
_CACHE_ERRORS = (RedisError, OSError, ValueError)


def _shared() -> bool:
    return settings.CACHES["default"]["BACKEND"] not in _PROCESS_LOCAL_CACHES


def deliveries_nudge() -> None:
    """Make sure a task will send the pending deliveries (see the module's docstring)."""
    shared = _shared()
    if shared:
        try:
            if not cache.add(NUDGE_KEY, 1, NUDGE_SECONDS):
                return  # a task is queued and will claim what is pending when it starts
        except _CACHE_ERRORS:
            logger.warning("delivery nudge not shared (cache unavailable)")
    if not enqueue(deliveries_send_task) and shared:
        deliveries_nudge_clear()


def deliveries_nudge_on_commit() -> None:
    """:func:`deliveries_nudge` once the current transaction commits (at once outside one)."""
    transaction.on_commit(deliveries_nudge, robust=True)


def deliveries_nudge_clear() -> None:
    """A task starts: deliveries committed from now on need a task of their own."""
    if _shared():
        try:
            cache.delete(NUDGE_KEY)
        except _CACHE_ERRORS:
            logger.warning("delivery nudge not cleared (cache unavailable)")
