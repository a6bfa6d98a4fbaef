"""Operators' view of deliveries, with the dead-letter retry action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from invitations.models import Delivery
from invitations.services import deliveries_retry


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "message",
        "transport",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "sent_at",
        "created_at",
    )
    list_filter = ("status", "transport")
    search_fields = ("message_id_header", "provider_message_id", "message__uid")
    date_hierarchy = "created_at"
    list_select_related = ("message",)
    raw_id_fields = ("message",)
    readonly_fields = (
        "message",
        "recipient",
        "transport",
        "status",
        "attempts",
        "next_attempt_at",
        "claimed_at",
        "last_error",
        "provider_message_id",
        "message_id_header",
        "sent_at",
        "created_at",
        "updated_at",
    )
    actions = ["retry_now"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry the selected deliveries now")
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        items = deliveries_retry(ids=list(queryset.values_list("pk", flat=True)))
        retried = [item.delivery_id for item in items if item.retried]
        skipped = [item for item in items if not item.retried]
        if retried:
            self.message_user(
                request,
                f"{len(retried)} deliveries queued for sending: "
                + ", ".join(f"#{pk}" for pk in retried),
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                "Not retried: " + ", ".join(f"#{i.delivery_id} ({i.note})" for i in skipped),
                messages.WARNING,
            )
