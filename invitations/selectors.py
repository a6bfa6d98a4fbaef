"""Reads on deliveries."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily, Metric

from invitations.models import Delivery


def deliveries_count_by_state() -> dict[tuple[str, str], int]:
    """``{(transport, status): count}`` over every delivery, in one query."""
    rows = Delivery.objects.values_list("transport", "status").annotate(n=Count("id")).order_by()
    return {(transport, status): n for transport, status, n in rows}


def deliveries_metrics() -> Iterable[Metric]:
    """``convoke_deliveries_by_state{transport, status}`` for ``GET /metrics``: a growing
    ``dead`` or ``failed`` count is what an operator alerts on."""
    family = GaugeMetricFamily(
        "convoke_deliveries_by_state",
        "Invitation deliveries by transport and status.",
        labels=["transport", "status"],
    )
    for (transport, status), count in sorted(deliveries_count_by_state().items()):
        family.add_metric([transport, status], count)
    yield family
