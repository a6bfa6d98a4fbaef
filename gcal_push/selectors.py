"""Reads of Google push: which calendars must be watched, which channels are due.

docs/design.md 1.4: a watch channel exists exactly for each connected Google calendar that is the
calendar of some active schedule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric

from calendars.models import Calendar, Provider, Schedule
from gcal_push.models import (
    ChannelState,
    GoogleCalendarChannel,
    GoogleCalendarSyncState,
)

# The console highlights active channels that expire within this window.
EXPIRY_WARNING = dt.timedelta(hours=24)

# A channel left pending this long belongs to a run that died between storing the row and
# storing the watch response.
PENDING_STALE = dt.timedelta(minutes=10)


def calendars_to_watch() -> QuerySet[Calendar]:
    """Connected Google calendars with a usable grant that some active schedule uses: the one
    definition of "calendars that must be watched", from which every channel is derived."""
    return Calendar.objects.filter(
        provider=Provider.GOOGLE,
        connected=True,
        google_account__isnull=False,
        google_account__revoked=False,
    ).filter(Exists(Schedule.objects.filter(calendar=OuterRef("pk"), active=True)))


def calendars_lacking_channel() -> QuerySet[Calendar]:
    """Calendars to watch without a pending or active channel, whose watch Google has not
    refused for good (a revoked grant already excludes the calendar from those to watch)."""
    # A pending channel older than PENDING_STALE was left by a run that died: it does not count.
    fresh_since = timezone.now() - PENDING_STALE
    live = GoogleCalendarChannel.objects.filter(calendar=OuterRef("pk")).filter(
        Q(state=ChannelState.ACTIVE) | Q(state=ChannelState.PENDING, created_at__gte=fresh_since)
    )
    refused = GoogleCalendarSyncState.objects.filter(
        calendar=OuterRef("pk"), watch_unsupported=True
    )
    return calendars_to_watch().exclude(Exists(live)).exclude(Exists(refused))


def channels_due(*, cutoff: dt.datetime) -> QuerySet[GoogleCalendarChannel]:
    """Active channels expiring before ``cutoff`` (or of unknown expiration), and retiring
    channels whose stop has not gone through yet."""
    return GoogleCalendarChannel.objects.filter(
        Q(state=ChannelState.ACTIVE, expiration__lt=cutoff)
        | Q(state=ChannelState.ACTIVE, expiration__isnull=True)
        | Q(state=ChannelState.RETIRING)
    )


def channels_orphaned() -> QuerySet[GoogleCalendarChannel]:
    """Live channels of calendars that must no longer be watched."""
    return GoogleCalendarChannel.objects.live().exclude(
        calendar_id__in=calendars_to_watch().values("pk")
    )


def calendars_to_reconcile() -> QuerySet[GoogleCalendarSyncState]:
    """Sync states of the calendars the periodic reconciliation syncs: those with an active
    channel, and those that Google refuses to watch (periodic sync is all they get)."""
    active = GoogleCalendarChannel.objects.filter(
        calendar=OuterRef("calendar"), state=ChannelState.ACTIVE
    )
    return GoogleCalendarSyncState.objects.filter(
        Q(Exists(active))
        | Q(watch_unsupported=True, calendar__in=calendars_to_watch().values("pk"))
    )


# Windows of convoke_google_channels_expiring, cumulative like histogram buckets.
EXPIRY_WINDOWS = (
    ("1h", dt.timedelta(hours=1)),
    ("24h", dt.timedelta(hours=24)),
    ("7d", dt.timedelta(days=7)),
)


def channels_expiry_metrics() -> Iterable[Metric]:
    """``convoke_google_channels_expiring{within}`` for ``GET /metrics``: active channels
    already expired, or expiring within 1 h, 24 h, 7 days (each count includes the
    shorter windows). Anything above zero in ``expired`` or ``1h`` means the renewal is
    not keeping up. One query."""
    now = timezone.now()
    counts = GoogleCalendarChannel.objects.filter(
        state=ChannelState.ACTIVE, expiration__isnull=False
    ).aggregate(
        expired=Count("pk", filter=Q(expiration__lte=now)),
        **{
            label: Count("pk", filter=Q(expiration__lte=now + window))
            for label, window in EXPIRY_WINDOWS
        },
    )
    family = GaugeMetricFamily(
        "convoke_google_channels_expiring",
        "Active Google watch channels expired or expiring within a window (cumulative).",
        labels=["within"],
    )
    family.add_metric(["expired"], counts["expired"])
    for label, _ in EXPIRY_WINDOWS:
        family.add_metric([label], counts[label])
    yield family


def sync_failed_q(prefix: str = "") -> Q:
    """Sync states whose latest sync attempt failed (no success since the failure)."""
    return Q(**{f"{prefix}last_failure_at__isnull": False}) & (
        Q(**{f"{prefix}last_synced_at__isnull": True})
        | Q(**{f"{prefix}last_failure_at__gt": F(f"{prefix}last_synced_at")})
    )


def google_attention_counts(*, now: dt.datetime) -> dict[str, int]:
    """For the console's index panel: active channels expired or expiring within
    :data:`EXPIRY_WARNING`, and calendars whose last sync failed; two queries."""
    channels = GoogleCalendarChannel.objects.filter(
        state=ChannelState.ACTIVE, expiration__isnull=False
    ).aggregate(
        expired=Count("pk", filter=Q(expiration__lte=now)),
        expiring=Count("pk", filter=Q(expiration__gt=now, expiration__lte=now + EXPIRY_WARNING)),
    )
    return {
        "channels_expiring": channels["expiring"],
        "channels_expired": channels["expired"],
        "calendars_sync_failed": GoogleCalendarSyncState.objects.filter(sync_failed_q()).count(),
    }
