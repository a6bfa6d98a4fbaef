"""Counters shared across processes, and the Prometheus exposition of ``GET /metrics``.

Call :func:`counter_increment` where something worth counting happens (a callback refused, a
delivery sent, a webhook notification, a Google call). Counters live in the database so
that web, worker and beat processes add to the same numbers. Other figures (deliveries by
state, channel expirations ahead) are read from their own tables at scrape time by
collectors registered with :func:`register_collector`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from calendars.models import MetricCounter

logger = logging.getLogger(__name__)

# name -> help text; a counter must be declared before it is incremented.
COUNTERS: dict[str, str] = {}
_EXTRA_COLLECTORS: list[Callable[[], Iterable[Metric]]] = []


def counter_declare(name: str, documentation: str) -> None:
    COUNTERS[name] = documentation


# The counters of the flows of docs/design.md, declared in one place so their names stay stable.
counter_declare("convoke_callbacks_accepted", "Scheduling callbacks accepted, by iTIP method.")
counter_declare("convoke_callbacks_refused", "Scheduling callbacks refused, by reason.")
counter_declare("convoke_deliveries", "Delivery attempts, by transport and outcome.")
counter_declare(
    "convoke_webhook_notifications", "Google push notifications, by resource state and outcome."
)
counter_declare("convoke_google_syncs", "Google calendar syncs, by outcome.")
counter_declare("convoke_google_calls", "Google API calls, by method and outcome.")


def register_collector(collect: Callable[[], Iterable[Metric]]) -> None:
    """Add a function that yields metric families read at scrape time."""
    if collect not in _EXTRA_COLLECTORS:
        _EXTRA_COLLECTORS.append(collect)


def _labels_key(labels: dict[str, str]) -> str:
    for key, value in labels.items():
        if "," in value or "=" in value or "," in key or "=" in key:
            raise ValueError(f"metric label {key}={value!r} may not contain ',' or '='")
    return ",".join(f"{key}={labels[key]}" for key in sorted(labels))


def counter_increment(name: str, amount: int = 1, **labels: str) -> None:
    """Add ``amount`` to the counter ``name`` with ``labels``.

    Metrics never break the work they measure: a database error here is logged, not raised.
    """
    if name not in COUNTERS:
        raise KeyError(f"metric {name!r} is not declared")
    key = _labels_key(labels)
    try:
        with transaction.atomic():
            updated = MetricCounter.objects.filter(name=name, labels=key).update(
                value=F("value") + amount
            )
            if updated:
                return
            try:
                with transaction.atomic():
                    MetricCounter.objects.create(name=name, labels=key, value=amount)
            except IntegrityError:
                MetricCounter.objects.filter(name=name, labels=key).update(
                    value=F("value") + amount
                )
    except DatabaseError:
        logger.warning("metric not recorded name=%s", name)


class _DatabaseCollector(Collector):
    def collect(self) -> Iterable[Metric]:
        families: dict[str, CounterMetricFamily] = {}
        label_names: dict[str, list[str]] = {}
        rows = MetricCounter.objects.filter(name__in=list(COUNTERS)).order_by("name", "labels")
        grouped: dict[str, list[tuple[dict[str, str], int]]] = {}
        for row in rows:
            labels = dict(part.split("=", 1) for part in row.labels.split(",") if part)
            grouped.setdefault(row.name, []).append((labels, row.value))
        for name, documentation in sorted(COUNTERS.items()):
            samples = grouped.get(name, [])
            names = sorted({key for labels, _ in samples for key in labels})
            label_names[name] = names
            family = CounterMetricFamily(name, documentation, labels=names)
            for labels, value in samples:
                family.add_metric([labels.get(key, "") for key in names], value)
            families[name] = family
        yield from families.values()
        for collect in _EXTRA_COLLECTORS:
            yield from collect()


def metrics_render() -> bytes:
    """The Prometheus text exposition of every counter and collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DatabaseCollector())
    return generate_latest(registry)
