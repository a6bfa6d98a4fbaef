"""Operators' view of watch channels and sync states. Channel tokens are never shown.

Channels list their calendar, state, how long until they expire (highlighted under 24 h),
the last notification and the calendar's last successful sync; the actions renew, stop and
resync go through :mod:`gcal_push.services`. Both pages show times in the operator's zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from calendars.admin_display import OperatorTimeZoneMixin, ReadOnlyPagesMixin, badge, local_time
from calendars.admin_panel import (
    TimelineEntry,
    panel_counts_register,
    timeline_source_register,
)
from calendars.models import Booking, Provider
from gcal_push.channels import ChannelRunSummary
from gcal_push.models import (
    LIVE_CHANNEL_STATES,
    ChannelState,
    GoogleCalendarChannel,
    GoogleCalendarSyncState,
)
from gcal_push.notifications import SyncRequest
from gcal_push.selectors import EXPIRY_WARNING, google_attention_counts, sync_failed_q
from gcal_push.services import calendar_resync, channel_renew_now, channel_teardown

STATE_TONES: dict[str, str] = {
    ChannelState.PENDING: "wait",
    ChannelState.ACTIVE: "ok",
    ChannelState.RETIRING: "wait",
    ChannelState.STOPPED: "off",
}


class ExpiryFilter(admin.SimpleListFilter):
    """Active channels by expiration: the renewal keeps this list empty but for "later"."""

    title = "expires"
    parameter_name = "expiry"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:  # type: ignore[type-arg]
        return [
            ("expired", "already expired"),
            ("soon", "within 24 hours"),
            ("later", "later"),
            ("unknown", "unknown"),
        ]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[GoogleCalendarChannel]
    ) -> QuerySet[GoogleCalendarChannel]:
        now = timezone.now()
        active = queryset.filter(state=ChannelState.ACTIVE)
        match self.value():
            case "expired":
                return active.filter(expiration__lte=now)
            case "soon":
                return active.filter(expiration__gt=now, expiration__lte=now + EXPIRY_WARNING)
            case "later":
                return active.filter(expiration__gt=now + EXPIRY_WARNING)
            case "unknown":
                return active.filter(expiration__isnull=True)
        return queryset


class LastSyncFilter(admin.SimpleListFilter):
    title = "last sync"
    parameter_name = "last_sync"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:  # type: ignore[type-arg]
        return [("failed", "failed"), ("ok", "succeeded"), ("never", "never ran")]

    def queryset(
        self, request: HttpRequest, queryset: QuerySet[GoogleCalendarSyncState]
    ) -> QuerySet[GoogleCalendarSyncState]:
        match self.value():
            case "failed":
                return queryset.filter(sync_failed_q())
            case "ok":
                return queryset.filter(last_synced_at__isnull=False).exclude(sync_failed_q())
            case "never":
                return queryset.filter(last_synced_at__isnull=True, last_failure_at__isnull=True)
        return queryset


def _expires_in(expiration: dt.datetime | None, state: str) -> SafeString | str:
    if expiration is None or state not in (ChannelState.ACTIVE, ChannelState.RETIRING):
        return "—"
    left = expiration - timezone.now()
    if left <= dt.timedelta(0):
        return badge("expired", "bad", title=local_time(expiration))
    hours, rest = divmod(int(left.total_seconds()), 3600)
    text = f"{hours // 24} d {hours % 24} h" if hours >= 24 else f"{hours} h {rest // 60} min"
    if left < EXPIRY_WARNING:
        return format_html(
            '<span class="cv-soon" title="{}">{} (under 24 h)</span>', local_time(expiration), text
        )
    return format_html('<span title="{}">{}</span>', local_time(expiration), text)


def _summary_text(summary: ChannelRunSummary) -> tuple[str, bool]:
    """A channel run's outcome for one calendar in words, and whether it went wrong."""
    if summary.failed:
        reasons = "; ".join(reason for _, reason in summary.failures) or "see its sync state"
        return f"failed ({reasons})", True
    if summary.busy:
        return "busy (another run holds the calendar; try again)", True
    done = [
        f"{count} {label}"
        for label, count in (
            ("created", summary.created),
            ("renewed", summary.renewed),
            ("stopped", summary.stopped),
        )
        if count
    ]
    return ", ".join(done) or "nothing to do", False


class _OperateMixin:
    """The actions need the model's change permission, although the pages are read-only."""

    def has_operate_permission(self, request: HttpRequest) -> bool:
        opts = self.opts  # type: ignore[attr-defined]
        return bool(request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}"))

    def _run_per_calendar(
        self,
        request: HttpRequest,
        calendar_ids: list[int],
        run: Callable[[int], tuple[str, bool]],
    ) -> None:
        if not calendar_ids:
            self.message_user(request, "Nothing to do for the selected rows.", messages.INFO)  # type: ignore[attr-defined]
            return
        for calendar_id in sorted(set(calendar_ids)):
            text, went_wrong = run(calendar_id)
            self.message_user(  # type: ignore[attr-defined]
                request,
                f"Calendar #{calendar_id}: {text}.",
                messages.WARNING if went_wrong else messages.SUCCESS,
            )


def _renew(calendar_id: int) -> tuple[str, bool]:
    return _summary_text(channel_renew_now(calendar_id=calendar_id))


def _stop(calendar_id: int) -> tuple[str, bool]:
    return _summary_text(channel_teardown(calendar_id=calendar_id))


def _resync(calendar_id: int) -> tuple[str, bool]:
    request = calendar_resync(calendar_id=calendar_id)
    if request == SyncRequest.ENQUEUED:
        return "sync enqueued", False
    return "a sync is already pending; it will include the latest changes", False


@admin.register(GoogleCalendarChannel)
class GoogleCalendarChannelAdmin(
    ReadOnlyPagesMixin, _OperateMixin, OperatorTimeZoneMixin, admin.ModelAdmin
):
    list_display = (
        "channel_id",
        "calendar",
        "state_badge",
        "expires_in",
        "last_notification",
        "last_successful_sync",
        "created_at",
    )
    list_filter = ("state", ExpiryFilter)
    search_fields = ("channel_id", "resource_id", "calendar__remote_id")
    date_hierarchy = "created_at"
    list_select_related = ("calendar", "calendar__google_sync_state")
    actions = ["renew_now", "stop", "resync"]
    # The secret token is deliberately not a field of this form.
    fields = (
        "calendar",
        "channel_id",
        "resource_id",
        "state",
        "expiration",
        "created_at",
        "renewed_at",
        "stopped_at",
        "last_notification_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj: GoogleCalendarChannel) -> SafeString:
        return badge(obj.get_state_display(), STATE_TONES.get(obj.state, "info"))

    @admin.display(description="expires in", ordering="expiration")
    def expires_in(self, obj: GoogleCalendarChannel) -> SafeString | str:
        return _expires_in(obj.expiration, obj.state)

    @admin.display(description="last notification", ordering="last_notification_at")
    def last_notification(self, obj: GoogleCalendarChannel) -> str:
        return local_time(obj.last_notification_at)

    @admin.display(
        description="last successful sync", ordering="calendar__google_sync_state__last_synced_at"
    )
    def last_successful_sync(self, obj: GoogleCalendarChannel) -> str:
        state = getattr(obj.calendar, "google_sync_state", None)
        return local_time(state.last_synced_at if state is not None else None)

    @admin.action(
        description="Renew now (new channel first, then stop the old one)", permissions=["operate"]
    )
    def renew_now(self, request: HttpRequest, queryset: QuerySet[GoogleCalendarChannel]) -> None:
        ids = list(queryset.filter(state=ChannelState.ACTIVE).values_list("calendar_id", flat=True))
        self._run_per_calendar(request, ids, _renew)

    @admin.action(
        description="Stop watching these calendars (all their live channels)",
        permissions=["operate"],
    )
    def stop(self, request: HttpRequest, queryset: QuerySet[GoogleCalendarChannel]) -> None:
        ids = list(
            queryset.filter(state__in=LIVE_CHANNEL_STATES).values_list("calendar_id", flat=True)
        )
        self._run_per_calendar(request, ids, _stop)

    @admin.action(description="Resync these calendars with Google now", permissions=["operate"])
    def resync(self, request: HttpRequest, queryset: QuerySet[GoogleCalendarChannel]) -> None:
        ids = list(queryset.values_list("calendar_id", flat=True))
        self._run_per_calendar(request, ids, _resync)


@admin.register(GoogleCalendarSyncState)
class GoogleCalendarSyncStateAdmin(
    ReadOnlyPagesMixin, _OperateMixin, OperatorTimeZoneMixin, admin.ModelAdmin
):
    list_display = (
        "calendar",
        "push",
        "last_sync_badge",
        "last_synced_at",
        "last_full_sync_at",
        "dirty",
        "sync_pending",
        "failure_count",
        "last_error",
    )
    list_filter = (LastSyncFilter, "watch_unsupported", "dirty", "sync_pending")
    search_fields = ("calendar__remote_id", "calendar__display_name", "last_error")
    list_select_related = ("calendar",)
    actions = ["resync"]
    fields = (
        "calendar",
        "push",
        "last_synced_at",
        "last_full_sync_at",
        "last_notification_at",
        "dirty",
        "sync_pending",
        "pending_since",
        "failure_count",
        "last_error",
        "last_failure_at",
        "watch_unsupported_at",
        "grant_revoked_at",
    )
    readonly_fields = fields

    @admin.display(description="push notifications")
    def push(self, obj: GoogleCalendarSyncState) -> str:
        if obj.grant_revoked_at:
            return "grant revoked: channels torn down, not synced"
        if obj.watch_unsupported:
            return "not supported by Google: periodic sync only"
        return "watched"

    @admin.display(description="last sync")
    def last_sync_badge(self, obj: GoogleCalendarSyncState) -> SafeString:
        if obj.last_failure_at and (
            obj.last_synced_at is None or obj.last_failure_at > obj.last_synced_at
        ):
            return badge("Failed", "bad", title=obj.last_error)
        if obj.last_synced_at:
            return badge("Succeeded", "ok")
        return badge("Never ran", "wait")

    @admin.action(description="Resync these calendars with Google now", permissions=["operate"])
    def resync(self, request: HttpRequest, queryset: QuerySet[GoogleCalendarSyncState]) -> None:
        ids = list(queryset.values_list("calendar_id", flat=True))
        self._run_per_calendar(request, ids, _resync)

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


# --- The console's index panel and booking timeline ---------------------------------------------


def _google_timeline(booking: Booking) -> list[TimelineEntry]:
    """The latest events of the booking's calendar's Google sync (its sync state keeps the
    last of each kind, not a history); one query, none for a CalDAV calendar."""
    if booking.calendar.provider != Provider.GOOGLE:
        return []
    state = GoogleCalendarSyncState.objects.filter(pk=booking.calendar_id).first()
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


panel_counts_register("google", lambda now: google_attention_counts(now=now))
timeline_source_register("google", _google_timeline)
