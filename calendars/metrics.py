"""Counters shared across processes, and the Prometheus exposition of ``GET /metrics``.

Call :func:`counter_increment` where something worth counting happens (a callback refused, a
delivery sent, a webhook notification, a Google call). Counters are ``prometheus_client``
counters in its multiprocess mode: every process (web worker, Celery pool process, beat)
adds to a memory-mapped file of its own under ``PROMETHEUS_MULTIPROC_DIR``, and a scrape
sums the files, so web, worker and beat add to the same numbers without touching the
database (counting an unauthenticated request writes no row: docs/design.md 1.5). The counts of
processes that have exited stay in their files; ``make run`` starts from an empty folder.

Other figures (deliveries by state, channel expirations ahead) are read from their own
tables at scrape time by collectors registered with :func:`register_collector`.

:func:`recent_count_add` and :func:`recent_counts` keep per-minute counts in the shared cache
for "how many in the last hour" (the admin's refused callbacks), which a total cannot say.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.cache import cache
from prometheus_client import Counter, values
from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector, CollectorRegistry
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# The values of every counter live in per-process files (prometheus_client's documented way
# to choose the value class), whichever module imported prometheus_client first.
if not getattr(values.ValueClass, "_multiprocess", False):
    values.ValueClass = values.MultiProcessValue()

COUNTERS: dict[str, Counter] = {}
_EXTRA_COLLECTORS: list[Callable[[], Iterable[Metric]]] = []


def counter_declare(name: str, documentation: str, labels: tuple[str, ...]) -> None:
    """Declare a counter; it is exposed as ``<name>_total`` with these label names."""
    if name not in COUNTERS:
        COUNTERS[name] = Counter(name, documentation, labelnames=labels, registry=None)


# The counters of the flows of docs/design.md, declared in one place so their names stay stable.
counter_declare(
    "convoke_callbacks_accepted", "Scheduling callbacks accepted, by iTIP method.", ("method",)
)
counter_declare(
    "convoke_callbacks_refused", "Scheduling callbacks refused, by reason.", ("reason",)
)
counter_declare(
    "convoke_deliveries", "Delivery attempts, by transport and outcome.", ("transport", "outcome")
)
counter_declare(
    "convoke_webhook_notifications",
    "Google push notifications, by resource state and outcome.",
    ("state", "outcome"),
)
counter_declare("convoke_google_syncs", "Google calendar syncs, by outcome.", ("outcome",))
counter_declare(
    "convoke_google_calls", "Google API calls, by method and outcome.", ("method", "outcome")
)


def register_collector(collect: Callable[[], Iterable[Metric]]) -> None:
    """Add a function that yields metric families read at scrape time."""
    if collect not in _EXTRA_COLLECTORS:
        _EXTRA_COLLECTORS.append(collect)


def _labels_checked(labels: dict[str, str]) -> None:
    for key, value in labels.items():
        if "," in value or "=" in value or "," in key or "=" in key:
            raise ValueError(f"metric label {key}={value!r} may not contain ',' or '='")


def counter_increment(name: str, amount: int = 1, **labels: str) -> None:
    """Add ``amount`` to the counter ``name`` with ``labels`` (no database, no network).

    Metrics never break the work they measure: a file that cannot be written is logged.
    """
    counter = COUNTERS.get(name)
    if counter is None:
        raise KeyError(f"metric {name!r} is not declared")
    _labels_checked(labels)
    try:
        counter.labels(**labels).inc(amount)
    except OSError:
        logger.warning("metric not recorded name=%s", name)


class _ScrapeTimeCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        for collect in _EXTRA_COLLECTORS:
            yield from collect()


def metrics_render() -> bytes:
    """The Prometheus text exposition of every counter (summed over every process) and of
    the collectors read at scrape time."""
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    registry.register(_ScrapeTimeCollector())
    return generate_latest(registry)


def metrics_process_dead(*, pid: int) -> None:
    """A web or worker process exited (gunicorn's ``child_exit``, Celery's
    ``worker_process_shutdown``): drop its live-gauge files, as prometheus_client asks.
    Its counter file stays, so the totals keep what it counted."""
    mark_process_dead(pid, settings.PROMETHEUS_MULTIPROC_DIR)


# --- Recent counts: per-minute buckets in the shared cache -------------------------------------

RECENT_WINDOW_MINUTES = 60
_RECENT_KEEP_SECONDS = (RECENT_WINDOW_MINUTES + 5) * 60


def _recent_key(name: str, label: str, minute: int) -> str:
    return f"convoke:recent:{name}:{label}:{minute}"


def recent_count_add(name: str, label: str, *, now: float | None = None) -> None:
    """Count one ``label`` event of ``name`` in the current minute's bucket of the shared
    cache (``CACHE_URL``; shared by every web process when it is Redis). Never raises."""
    minute = int((now if now is not None else time.time()) // 60)
    key = _recent_key(name, label, minute)
    try:
        cache.add(key, 0, timeout=_RECENT_KEEP_SECONDS)
        cache.incr(key)
    except (ValueError, OSError, RedisError):
        logger.warning("recent count not recorded name=%s", name)


def recent_counts(
    name: str,
    labels: Iterable[str],
    *,
    minutes: int = RECENT_WINDOW_MINUTES,
    now: float | None = None,
) -> dict[str, int]:
    """``{label: count}`` of the last ``minutes`` minutes (this one included), in one cache
    read; labels never counted are left out."""
    current = int((now if now is not None else time.time()) // 60)
    keys = {
        _recent_key(name, label, minute): label
        for label in labels
        for minute in range(current - minutes + 1, current + 1)
    }
    try:
        found = cache.get_many(list(keys))
    except (ValueError, OSError, RedisError):
        logger.warning("recent counts not read name=%s", name)
        return {}
    totals: dict[str, int] = {}
    for key, value in found.items():
        if isinstance(value, int) and value > 0:
            totals[keys[key]] = totals.get(keys[key], 0) + value
    return totals
