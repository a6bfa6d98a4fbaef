"""Reads on received scheduling messages and refused callbacks."""

from __future__ import annotations

from calendars.metrics import RECENT_WINDOW_MINUTES, recent_counts
from scheduling.models import REFUSALS_RECENT, RefusalReason


def refused_callbacks_by_reason(*, minutes: int = RECENT_WINDOW_MINUTES) -> dict[str, int]:
    """``{reason: count}`` of callbacks refused in the last ``minutes`` (at most an hour),
    from the shared cache's per-minute counts, in one cache read and no query."""
    return recent_counts(
        REFUSALS_RECENT, [reason.value for reason in RefusalReason], minutes=minutes
    )
