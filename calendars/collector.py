"""Python's garbage collector in the long-lived processes (gunicorn's workers, Celery's pool).

Every callback leaves a few dozen objects in reference cycles (Django's request and what
holds it: the lazy user, the messages and session storages, the body's buffer), freed only by
the collector. The few that outlive two young collections reach the oldest generation, which
CPython collects in full only once the objects promoted since the last full collection are a
quarter of those it holds: in a Django process, about 160,000 objects made at start-up. So
the garbage piled up for about 24,000 requests per process between two full collections: a
process's memory grew about 0.3 MiB a minute under steady load, for tens of minutes, before
the first fell (bench/callback.py's memory run; bench/memory.py found why).

:func:`collector_settle` runs once a process has loaded the application: one full collection,
then ``gc.freeze()`` moves every surviving object (modules, classes, settings, compiled
templates) to the permanent generation, which collections no longer scan, and a second
collection measures the oldest generation without them. From then on a full collection runs
once the garbage promoted is a quarter of what the process made since start-up: often, and
cheap (it scans only those). It also keeps the start-up objects' pages shared with the
parent process where it forked (the collector no longer writes to them).

That schedule is a web worker's, which makes container objects by the thousand per second.
A Celery pool process makes far fewer (the deliveries of a batch are built, sent and dropped
at once): at 200 invitations a second its young generation was collected about ten times a
minute, the middle one about twice, and the oldest about once in ten minutes. Between two full
collections the interpreter's free lists (up to 2,000 tuples of each size, emptied only by a
full collection) and what waited in the oldest generation kept pages of Python's allocator in
use, and each pool process grew about 0.4 MiB a minute. :func:`collector_tidy`, called after
each Celery task, runs a full collection at most every ``TIDY_SECONDS``: a settled process
scans a few thousand objects, well under a millisecond. With it, and with the quoted-printable
lines kept in an LRU (invitations/mime.py), the pool processes stayed flat over 15 minutes at
200 invitations a second; with either alone they grew (docs/benchmarks.md, fourth round).
"""

from __future__ import annotations

import gc
import time

# After a task, a pool process collects in full when its last such collection is this old (s).
TIDY_SECONDS = 30.0

_last_tidy = time.monotonic()


def collector_settle() -> int:
    """Collect, freeze what survives, collect again; the number of objects now frozen."""
    gc.collect()
    gc.freeze()
    gc.collect()
    return gc.get_freeze_count()


def collector_tidy(*, now: float | None = None) -> bool:
    """Collect in full when the last full collection by this function is ``TIDY_SECONDS``
    old or more; whether it collected. ``now`` is ``time.monotonic()`` (given by tests)."""
    global _last_tidy
    now = time.monotonic() if now is None else now
    if now - _last_tidy < TIDY_SECONDS:
        return False
    _last_tidy = now
    gc.collect()
    return True
