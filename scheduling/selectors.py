"""Reads on received scheduling messages and refused callbacks."""

from __future__ import annotations

import datetime as dt

from django.db.models import Count

from scheduling.models import RefusedCallback


def refused_callbacks_by_reason(*, since: dt.datetime) -> dict[str, int]:
    """``{reason: count}`` of callbacks refused at or after ``since``, in one query."""
    rows = (
        RefusedCallback.objects.filter(at__gte=since)
        .values_list("reason")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {reason: n for reason, n in rows}
