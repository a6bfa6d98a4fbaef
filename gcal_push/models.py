"""Watch channels and the per-calendar sync state (docs/design.md 1.4).

A Google calendar that is some schedule's calendar has a watch channel (``events.watch``):
Google posts a notification to ``/webhooks/google-calendar/`` whenever anything on the
calendar changes, never saying what. Several channels may exist for one calendar during a
renewal (make-before-break), so channels are rows of their own; what the sync needs (the
sync token, the dirty and pending flags, the leases that serialise work on one calendar)
lives in exactly one :class:`GoogleCalendarSyncState` row per calendar.

Every guarantee that spans processes is a conditional ``UPDATE`` on that row or a row lock,
never a check in Python (docs/style.md rule 3).
"""

from __future__ import annotations

import secrets
import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from calendars.models import Calendar

# Google: a channel id is "a UUID or a similar unique string", at most 64 characters, of
# [A-Za-z0-9-_+/=]; the token is "an arbitrary string value", at most 256 characters.
CHANNEL_ID_MAX_LENGTH = 64
CHANNEL_TOKEN_MAX_LENGTH = 256


def new_channel_id() -> str:
    """A fresh channel id: never reused, since Google answers 400 ``channelIdNotUnique``."""
    return f"convoke-{uuid.uuid4().hex}"


def new_channel_token() -> str:
    """The secret Google echoes in ``X-Goog-Channel-Token`` (256 bits of randomness)."""
    return secrets.token_urlsafe(32)


class ChannelState(models.TextChoices):
    # Stored before ``events.watch`` is called, so that an early ``sync`` is recognised.
    PENDING = "pending", "Pending (watch requested)"
    ACTIVE = "active", "Active"
    # Replaced by a newer channel (or being torn down); still accepted until stopped.
    RETIRING = "retiring", "Retiring (stop requested)"
    STOPPED = "stopped", "Stopped"


LIVE_CHANNEL_STATES = (ChannelState.PENDING, ChannelState.ACTIVE, ChannelState.RETIRING)


class GoogleCalendarChannelQuerySet(models.QuerySet["GoogleCalendarChannel"]):
    def live(self) -> GoogleCalendarChannelQuerySet:
        """Channels whose notifications the webhook accepts."""
        return self.filter(state__in=LIVE_CHANNEL_STATES)


class GoogleCalendarChannel(models.Model):
    """One ``events.watch`` channel on a Google calendar."""

    calendar = models.ForeignKey(Calendar, on_delete=models.CASCADE, related_name="google_channels")
    channel_id = models.CharField(
        max_length=CHANNEL_ID_MAX_LENGTH, unique=True, default=new_channel_id, editable=False
    )
    # Compared with hmac.compare_digest, never logged, never shown in the admin.
    token = models.CharField(
        max_length=CHANNEL_TOKEN_MAX_LENGTH, default=new_channel_token, editable=False
    )
    # Google's opaque id of the watched resource, from the watch response.
    resource_id = models.CharField(max_length=255, blank=True)
    expiration = models.DateTimeField(null=True, blank=True)
    state = models.CharField(
        max_length=16, choices=ChannelState.choices, default=ChannelState.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    # When a successor channel took over (the start of this channel's retirement).
    renewed_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    last_notification_at = models.DateTimeField(null=True, blank=True)

    objects = GoogleCalendarChannelQuerySet.as_manager()

    class Meta:
        db_table = "google_calendar_channels"
        verbose_name = "Google calendar channel"
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=ChannelState.values), name="gcal_channel_state_valid"
            ),
            models.CheckConstraint(
                condition=~Q(state=ChannelState.ACTIVE) | ~Q(resource_id=""),
                name="gcal_channel_active_has_resource",
            ),
            # At most one channel being created and one active channel per calendar: two
            # concurrent creations or renewals can never both succeed. During a renewal the
            # old channel is set retiring before its successor becomes active.
            models.UniqueConstraint(
                fields=["calendar"],
                condition=Q(state=ChannelState.PENDING),
                name="gcal_channel_one_pending_per_calendar",
            ),
            models.UniqueConstraint(
                fields=["calendar"],
                condition=Q(state=ChannelState.ACTIVE),
                name="gcal_channel_one_active_per_calendar",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "expiration"], name="gcal_channel_state_exp"),
            models.Index(fields=["calendar", "state"], name="gcal_channel_calendar_state"),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} ({self.state})"


class GoogleCalendarSyncState(models.Model):
    """The one row per Google calendar that syncs and channel operations lock.

    * ``dirty``: a notification (or the periodic reconciliation) arrived since the last
      listing began; the sync loops while it is set.
    * ``sync_pending``: a sync task is queued or running. The webhook enqueues a task only
      when it flips this from false to true in one conditional ``UPDATE``, so a storm of
      notifications coalesces into one task.
    * ``sync_lease_*``: the calendar's sync is running in some worker until then.
    * ``channel_lease_*``: a channel operation (create, renew, teardown) is running.
    """

    calendar = models.OneToOneField(
        Calendar, on_delete=models.CASCADE, primary_key=True, related_name="google_sync_state"
    )
    # Google's nextSyncToken covering every change already applied; empty before the
    # first full listing. Not a credential, but never logged either.
    sync_token = models.TextField(blank=True, default="")
    last_full_sync_at = models.DateTimeField(null=True, blank=True)
    last_synced_at = models.DateTimeField("last successful sync", null=True, blank=True)
    last_notification_at = models.DateTimeField(null=True, blank=True)

    dirty = models.BooleanField(default=False)
    sync_pending = models.BooleanField(default=False)
    pending_since = models.DateTimeField(null=True, blank=True)
    sync_lease_owner = models.CharField(max_length=32, blank=True)
    sync_lease_expires_at = models.DateTimeField(null=True, blank=True)
    channel_lease_owner = models.CharField(max_length=32, blank=True)
    channel_lease_expires_at = models.DateTimeField(null=True, blank=True)

    failure_count = models.PositiveIntegerField(default=0)
    # A stable reason code (never exception text from Google, never a token).
    last_error = models.CharField(max_length=200, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)

    # Google refused the watch permanently (pushNotSupportedForRequestedResource): the
    # calendar is kept in sync by the periodic reconciliation only.
    watch_unsupported = models.BooleanField(default=False)
    watch_unsupported_at = models.DateTimeField(null=True, blank=True)
    # The account's grant was revoked: channels were torn down, syncing stopped.
    grant_revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "google_calendar_sync_states"
        verbose_name = "Google calendar sync state"
        indexes = [
            models.Index(fields=["sync_pending", "pending_since"], name="gcal_sync_pending"),
        ]

    def __str__(self) -> str:
        return f"sync state of calendar {self.calendar_id}"
