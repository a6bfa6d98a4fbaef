"""Reads for the operators' console: the index panel's counts and a booking's timeline.

The console sits on top of every app, but lives in the project package, which imports no
app above the core. So each app contributes its part, registered when its ``admin`` module
is loaded (admin autodiscovery): :func:`panel_counts_register` for the index panel (the
outbox's deliveries, the callback's refusals, the Google channels and syncs), and
:func:`timeline_source_register` for a booking's timeline (its emails, the messages about
it, its calendar's Google sync). The core adds the bookings' own counts and transitions.

Each source runs a fixed number of queries whatever the number of rows (docs/style.md rule 16):
the index page is opened often, and a booking's timeline gathers rows from four apps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from calendars.models import Booking, BookingStatus, PublishState, TransitionSource


@dataclass(frozen=True)
class PanelCounts:
    deliveries_pending: int = 0
    deliveries_failed: int = 0
    deliveries_dead: int = 0
    channels_expiring: int = 0  # active, expiring within 24 h
    channels_expired: int = 0  # active, expiration already past
    calendars_sync_failed: int = 0
    bookings_publish_failed: int = 0
    bookings_overlapping: int = 0
    refused_last_hour: dict[str, int] = field(default_factory=dict)

    @property
    def refused_last_hour_total(self) -> int:
        return sum(self.refused_last_hour.values())


PanelSource = Callable[[dt.datetime], dict[str, Any]]


@dataclass(frozen=True)
class TimelineEntry:
    at: dt.datetime
    kind: str  # transition, message, delivery, google
    title: str
    source: str = ""
    detail: str = ""
    tone: str = "info"
    link_url: str = ""  # the admin page of the message or delivery

    @property
    def sort_key(self) -> tuple[dt.datetime, int]:
        return (self.at, KIND_ORDER.get(self.kind, 9))


TimelineSource = Callable[[Booking], Iterable[TimelineEntry]]

KIND_ORDER = {"transition": 0, "message": 1, "delivery": 2, "google": 3}
STATUS_TONES: dict[str, str] = {
    BookingStatus.REQUESTED: "wait",
    BookingStatus.BOOKED: "ok",
    BookingStatus.DECLINED: "bad",
    BookingStatus.CANCELLED: "off",
}

_panel_sources: dict[str, PanelSource] = {}
_timeline_sources: dict[str, TimelineSource] = {}


def panel_counts_register(name: str, source: PanelSource) -> None:
    """``source(now)`` returns some :class:`PanelCounts` fields; registered once per name."""
    _panel_sources[name] = source


def timeline_source_register(name: str, source: TimelineSource) -> None:
    """``source(booking)`` returns the booking's entries of one app; once per name."""
    _timeline_sources[name] = source


def _bookings_counts(now: dt.datetime) -> dict[str, Any]:
    return Booking.objects.aggregate(
        bookings_publish_failed=Count("pk", filter=Q(publish_state=PublishState.FAILED)),
        # Moved in Google onto another active booking's time (kept, for operators to settle).
        bookings_overlapping=Count("pk", filter=Q(overlaps=True)),
    )


panel_counts_register("bookings", _bookings_counts)


def operator_panel_counts(*, now: dt.datetime | None = None) -> PanelCounts:
    """What an operator needs to see first: one or two queries per app."""
    now = now or timezone.now()
    values: dict[str, Any] = {}
    for name in sorted(_panel_sources):
        values.update(_panel_sources[name](now))
    return PanelCounts(**values)


def _detail_text(detail: dict[str, Any]) -> str:
    return ", ".join(f"{key}={detail[key]}" for key in sorted(detail))


def _transition_entries(booking: Booking) -> list[TimelineEntry]:
    entries: list[TimelineEntry] = []
    sources = dict(TransitionSource.choices)
    for transition in booking.transitions.order_by("at", "pk"):
        moved = transition.from_status != transition.to_status
        title = (
            f"{transition.from_status or '∅'} → {transition.to_status}"
            if moved
            else f"{transition.to_status} (no change of status)"
        )
        entries.append(
            TimelineEntry(
                at=transition.at,
                kind="transition",
                title=title,
                source=sources.get(transition.source, transition.source),
                detail=_detail_text(transition.detail or {}),
                tone=STATUS_TONES.get(transition.to_status, "info") if moved else "info",
            )
        )
    return entries


def booking_timeline(*, booking: Booking) -> list[TimelineEntry]:
    """The booking's transitions merged with what every app knows about it (the emails
    about it, the scheduling messages of its UID, its calendar's Google sync), oldest
    first; one query per source."""
    entries = _transition_entries(booking)
    for name in sorted(_timeline_sources):
        entries.extend(_timeline_sources[name](booking))
    return sorted(entries, key=lambda entry: entry.sort_key)
