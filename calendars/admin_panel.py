"""Reads for the operators' console: the index panel's counts and a booking's timeline.

Each function runs a fixed number of queries whatever the number of rows (STYLE.md rule 16):
the index page is opened often, and a booking's timeline gathers rows from four apps.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, F, Prefetch, Q
from django.urls import reverse
from django.utils import timezone

from calendars.admin_display import mask_address
from calendars.models import Booking, BookingStatus, Provider, SyncState, TransitionSource
from gcal_push.models import ChannelState, GoogleCalendarChannel, GoogleCalendarSyncState
from invitations.models import Delivery, DeliveryStatus
from scheduling.models import SchedulingMessage
from scheduling.selectors import refused_callbacks_by_reason

EXPIRY_WARNING = dt.timedelta(hours=24)


@dataclass(frozen=True)
class PanelCounts:
    deliveries_pending: int
    deliveries_failed: int
    deliveries_dead: int
    channels_expiring: int  # active, expiring within 24 h
    channels_expired: int  # active, expiration already past
    calendars_sync_failed: int
    bookings_sync_failed: int
    refused_last_hour: dict[str, int] = field(default_factory=dict)

    @property
    def refused_last_hour_total(self) -> int:
        return sum(self.refused_last_hour.values())


def sync_failed_q(prefix: str = "") -> Q:
    """Sync states whose latest sync attempt failed (no success since the failure)."""
    return Q(**{f"{prefix}last_failure_at__isnull": False}) & (
        Q(**{f"{prefix}last_synced_at__isnull": True})
        | Q(**{f"{prefix}last_failure_at__gt": F(f"{prefix}last_synced_at")})
    )


def operator_panel_counts(*, now: dt.datetime | None = None) -> PanelCounts:
    """What an operator needs to see first, in five queries."""
    now = now or timezone.now()
    by_status = dict(
        Delivery.objects.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.DEAD]
        )
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    channels = GoogleCalendarChannel.objects.filter(
        state=ChannelState.ACTIVE, expiration__isnull=False
    ).aggregate(
        expired=Count("pk", filter=Q(expiration__lte=now)),
        expiring=Count("pk", filter=Q(expiration__gt=now, expiration__lte=now + EXPIRY_WARNING)),
    )
    calendars_failed = GoogleCalendarSyncState.objects.filter(sync_failed_q()).count()
    bookings_failed = Booking.objects.filter(sync_state=SyncState.FAILED).count()
    return PanelCounts(
        deliveries_pending=by_status.get(DeliveryStatus.PENDING, 0),
        deliveries_failed=by_status.get(DeliveryStatus.FAILED, 0),
        deliveries_dead=by_status.get(DeliveryStatus.DEAD, 0),
        channels_expiring=channels["expiring"],
        channels_expired=channels["expired"],
        calendars_sync_failed=calendars_failed,
        bookings_sync_failed=bookings_failed,
        refused_last_hour=dict(sorted(refused_callbacks_by_reason().items())),
    )


# --- A booking's timeline ----------------------------------------------------------------------


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


KIND_ORDER = {"transition": 0, "message": 1, "delivery": 2, "google": 3}
STATUS_TONES: dict[str, str] = {
    BookingStatus.REQUESTED: "wait",
    BookingStatus.BOOKED: "ok",
    BookingStatus.DECLINED: "bad",
    BookingStatus.CANCELLED: "off",
}
DELIVERY_TONES: dict[str, str] = {
    DeliveryStatus.PENDING: "wait",
    DeliveryStatus.SENDING: "wait",
    DeliveryStatus.SENT: "ok",
    DeliveryStatus.FAILED: "wait",
    DeliveryStatus.DEAD: "bad",
}


def _detail_text(detail: dict[str, Any]) -> str:
    return ", ".join(f"{key}={detail[key]}" for key in sorted(detail))


def booking_timeline(*, booking: Booking) -> list[TimelineEntry]:
    """The booking's transitions merged with the scheduling messages about the same UID,
    their deliveries and the Google sync events of its calendar, oldest first; four queries.
    """
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

    deliveries = Prefetch(
        "deliveries",
        queryset=Delivery.objects.only(
            "pk",
            "message_id",
            "recipient",
            "transport",
            "status",
            "attempts",
            "last_error",
            "created_at",
            "updated_at",
            "sent_at",
        ),
    )
    messages = (
        SchedulingMessage.objects.filter(uid=booking.ical_uid)
        .only("pk", "method", "sequence", "sender", "recipient", "received_at", "uid")
        .prefetch_related(deliveries)
        .order_by("received_at", "pk")
    )
    for message in messages:
        entries.append(
            TimelineEntry(
                at=message.received_at,
                kind="message",
                title=f"{message.method} received (SEQUENCE {message.sequence})",
                source="CalDAV scheduling callback",
                detail=f"{mask_address(message.sender)} → {mask_address(message.recipient)}",
                link_url=reverse("admin:scheduling_schedulingmessage_change", args=[message.pk]),
            )
        )
        for delivery in message.deliveries.all():
            detail = f"{delivery.attempts} attempt(s) to {mask_address(delivery.recipient)}"
            if delivery.last_error:
                detail += f"; last error: {delivery.last_error}"
            entries.append(
                TimelineEntry(
                    at=delivery.sent_at or delivery.updated_at or delivery.created_at,
                    kind="delivery",
                    title=f"email {delivery.get_status_display().lower()}",
                    source=delivery.get_transport_display(),
                    detail=detail,
                    tone=DELIVERY_TONES.get(delivery.status, "info"),
                    link_url=reverse("admin:invitations_delivery_change", args=[delivery.pk]),
                )
            )

    if booking.calendar.provider == Provider.GOOGLE:
        entries.extend(_google_entries(calendar_id=booking.calendar_id))
    return sorted(entries, key=lambda entry: entry.sort_key)


def _google_entries(*, calendar_id: int) -> list[TimelineEntry]:
    """The latest events of the calendar's Google sync (its sync state keeps the last of each
    kind, not a history)."""
    state = GoogleCalendarSyncState.objects.filter(pk=calendar_id).first()
    if state is None:
        return []
    source = "Google Calendar"
    entries: list[TimelineEntry] = []
    if state.last_notification_at:
        entries.append(
            TimelineEntry(state.last_notification_at, "google", "last push notification", source)
        )
    if state.last_full_sync_at:
        entries.append(TimelineEntry(state.last_full_sync_at, "google", "last full sync", source))
    if state.last_synced_at:
        entries.append(
            TimelineEntry(state.last_synced_at, "google", "last successful sync", source, tone="ok")
        )
    if state.last_failure_at:
        entries.append(
            TimelineEntry(
                state.last_failure_at,
                "google",
                "last failed sync",
                source,
                detail=f"{state.last_error} (failures: {state.failure_count})",
                tone="bad",
            )
        )
    if state.grant_revoked_at:
        entries.append(
            TimelineEntry(state.grant_revoked_at, "google", "access revoked", source, tone="bad")
        )
    return entries
