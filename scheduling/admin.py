"""Operators' view of received scheduling messages (read-only: they are a record)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from scheduling.models import SchedulingMessage


@admin.register(SchedulingMessage)
class SchedulingMessageAdmin(admin.ModelAdmin):
    list_display = ("id", "method", "uid", "sequence", "is_mailbox", "received_at")
    list_filter = ("method", "is_mailbox")
    search_fields = ("uid",)
    date_hierarchy = "received_at"
    readonly_fields = (
        "method",
        "sender",
        "recipient",
        "uid",
        "recurrence_id",
        "sequence",
        "dtstamp",
        "is_mailbox",
        "org_id",
        "body_text",
        "body_sha256",
        "dedupe_key",
        "received_at",
    )
    exclude = ("body",)

    @admin.display(description="body")
    def body_text(self, obj: SchedulingMessage) -> str:
        return bytes(obj.body).decode("utf-8", "replace")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
