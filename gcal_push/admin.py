"""Operators' view of watch channels and sync states. Channel tokens are never shown."""

from __future__ import annotations

from django.contrib import admin

from gcal_push.models import GoogleCalendarChannel, GoogleCalendarSyncState


@admin.register(GoogleCalendarChannel)
class GoogleCalendarChannelAdmin(admin.ModelAdmin):
    list_display = (
        "channel_id",
        "calendar",
        "state",
        "expiration",
        "created_at",
        "renewed_at",
        "last_notification_at",
    )
    list_filter = ("state",)
    search_fields = ("channel_id", "resource_id")
    list_select_related = ("calendar",)
    raw_id_fields = ("calendar",)
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


@admin.register(GoogleCalendarSyncState)
class GoogleCalendarSyncStateAdmin(admin.ModelAdmin):
    list_display = (
        "calendar",
        "push",
        "last_synced_at",
        "last_full_sync_at",
        "dirty",
        "sync_pending",
        "failure_count",
        "last_error",
    )
    list_filter = ("watch_unsupported", "dirty", "sync_pending")
    list_select_related = ("calendar",)
    raw_id_fields = ("calendar",)
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

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
