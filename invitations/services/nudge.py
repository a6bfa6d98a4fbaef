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

A process also remembers, for ``NUDGE_RECENT_SECONDS``, the last time it knew a task to be on
its way (it found the key, or added it and sent the task): a commit within that window needs
no cache call. This is safe because a task, once started, keeps claiming for at least
``LINGER_SECONDS`` (:mod:`.send`) after its start, which comes after the moment remembered: a
delivery committed less than ``NUDGE_RECENT_SECONDS`` (< ``LINGER_SECONDS``) after that moment
is claimed by that task, whether it had started then or not. Only the commits' nudge
(:func:`deliveries_nudge_on_commit`) uses the memo; :func:`deliveries_nudge` itself (a task
asking for the next one) always asks the cache, and a task starting in this process (an eager
run) forgets the memo. The cost it saves: one Redis round trip per callback, about 0.3 ms
of the web's CPU (1,000 sabre callbacks in process: 1.52 -> 1.20 ms outside the parse, issue
14) and a Redis command each; with the memo a busy web process asks Redis twice a second.
A task that dies (not a soft time limit: a crash, a lost database) within its first second
leaves the deliveries committed in the window after its nudge to the sweep, as it leaves the
ones it had claimed.
"""

from __future__ import annotations

import logging
import time

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
# How long a process trusts that a task it knew to be queued will claim new deliveries; below
# invitations.services.send.LINGER_SECONDS (a test pins it), with room for the clocks.
NUDGE_RECENT_SECONDS = 0.5

_PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)
_CACHE_ERRORS = (RedisError, OSError, ValueError)


class _RecentNudge:
    """When this process last knew a task to be queued (``time.monotonic()``), if it did."""

    def __init__(self) -> None:
        self.known_at: float | None = None

    def note(self, moment: float) -> None:
        self.known_at = moment

    def forget(self) -> None:
        self.known_at = None

    def holds(self) -> bool:
        known_at = self.known_at
        return known_at is not None and time.monotonic() - known_at < NUDGE_RECENT_SECONDS


_recent = _RecentNudge()


def _shared() -> bool:
    return settings.CACHES["default"]["BACKEND"] not in _PROCESS_LOCAL_CACHES


def deliveries_nudge() -> None:
    """Make sure a task will send the pending deliveries (see the module's docstring)."""
    # Taken before the cache is asked: the key (or the task sent below) exists from a later
    # moment, so the task that removes it starts after this one.
    moment = time.monotonic()
    shared = _shared()
    if shared:
        try:
            if not cache.add(NUDGE_KEY, 1, NUDGE_SECONDS):
                _recent.note(moment)
                return  # a task is queued and will claim what is pending when it starts
        except _CACHE_ERRORS:
            logger.warning("delivery nudge not shared (cache unavailable)")
    # Noted before the task is sent: a task run eagerly, here, forgets it as it starts.
    _recent.note(moment)
    if not enqueue(deliveries_send_task):
        _recent.forget()
        if shared:
            deliveries_nudge_clear()


def _deliveries_nudge_unless_recent() -> None:
    if not _recent.holds():
        deliveries_nudge()


def deliveries_nudge_on_commit() -> None:
    """:func:`deliveries_nudge` once the current transaction commits (at once outside one),
    unless this process knew a task to be queued less than ``NUDGE_RECENT_SECONDS`` ago."""
    transaction.on_commit(_deliveries_nudge_unless_recent, robust=True)


def deliveries_nudge_clear() -> None:
    """A task starts: deliveries committed from now on need a task of their own."""
    _recent.forget()
    if _shared():
        try:
            cache.delete(NUDGE_KEY)
        except _CACHE_ERRORS:
            logger.warning("delivery nudge not cleared (cache unavailable)")
