"""Reads on deliveries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from calendars.ical import Method
from invitations.models import Delivery, DeliveryKind, DeliveryStatus

# A delivery that never reached its recipient, and never will.
NEVER_DELIVERED = (DeliveryStatus.DEAD, DeliveryStatus.SKIPPED)


def previous_request_body(*, delivery: Delivery) -> bytes | None:
    """The body of the last REQUEST Convoke sent (or is sending) this delivery's recipient
    for the same UID, whichever occurrence it was about; None when there is none, and
    always None for anything but a REQUEST. One indexed query.

    It decides the kind of email (issue 13: first invitation means first): an attendee
    added to an event later gets the event's current SEQUENCE from the server, yet it is
    their first invitation; and it is the version an update says what changed from. A
    REQUEST that is dead or skipped never reached them, and does not count.
    """
    if delivery.kind != DeliveryKind.ITIP or delivery.method != Method.REQUEST:
        return None
    previous = (
        Delivery.objects.filter(
            kind=DeliveryKind.ITIP,
            uid=delivery.uid,
            recipient=delivery.recipient,
            method=Method.REQUEST,
            pk__lt=delivery.pk,
        )
        .exclude(status__in=NEVER_DELIVERED)
        .order_by("-pk")
        .values_list("body", flat=True)
        .first()
    )
    return bytes(previous) if previous is not None else None


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


# Seconds from a callback's acceptance (the delivery's creation) to the email being handed to
# the transport: most go within seconds, retries after an outage take minutes to hours.
LATENCY_BUCKETS_SECONDS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0)


def deliveries_latency() -> dict[str, tuple[list[int], int, float]]:
    """``{transport: (cumulative bucket counts, count, sum of seconds)}`` over sent
    deliveries, from creation to sending; one query whatever the number of rows."""
    latency = ExpressionWrapper(F("sent_at") - F("created_at"), output_field=DurationField())
    sent = Q(status=DeliveryStatus.SENT, sent_at__isnull=False)
    aggregates: dict[str, Any] = {
        f"le{index}": Count(
            "id", filter=Q(sent_at__lte=F("created_at") + dt.timedelta(seconds=bound))
        )
        for index, bound in enumerate(LATENCY_BUCKETS_SECONDS)
    }
    rows = (
        Delivery.objects.filter(sent)
        .values("transport")
        .annotate(total=Count("id"), seconds=Sum(latency), **aggregates)
        .order_by("transport")
    )
    result: dict[str, tuple[list[int], int, float]] = {}
    for values in rows:
        row: dict[str, Any] = dict(values)
        buckets = [row[f"le{index}"] for index in range(len(LATENCY_BUCKETS_SECONDS))]
        total_seconds = row["seconds"].total_seconds() if row["seconds"] is not None else 0.0
        result[row["transport"]] = (buckets, row["total"], max(total_seconds, 0.0))
    return result


def deliveries_latency_metrics() -> Iterable[Metric]:
    """``convoke_delivery_latency_seconds{transport}``: a histogram read from the delivery
    rows at scrape time, so every web, worker and beat process shows the same figures."""
    family = HistogramMetricFamily(
        "convoke_delivery_latency_seconds",
        "Seconds from a callback's acceptance to its email being sent, by transport.",
        labels=["transport"],
    )
    for transport, (buckets, total, seconds) in sorted(deliveries_latency().items()):
        pairs = [
            (floatToGoString(bound), float(count))
            for bound, count in zip(LATENCY_BUCKETS_SECONDS, buckets, strict=True)
        ]
        pairs.append(("+Inf", float(total)))
        family.add_metric([transport], pairs, seconds)
    yield family
