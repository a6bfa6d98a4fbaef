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
"""

from __future__ import annotations

import gc


def collector_settle() -> int:
    """Collect, freeze what survives, collect again; the number of objects now frozen."""
    gc.collect()
    gc.freeze()
    gc.collect()
    return gc.get_freeze_count()
