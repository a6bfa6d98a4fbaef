"""Operators' view of received scheduling messages (read-only: they are a record).

The list masks addresses (``b***@example.net``); a message's own page shows them in full,
with the iCalendar body exactly as received, folded lines and all, escaped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from calendars.admin_display import (
    OperatorTimeZoneMixin,
    ReadOnlyPagesMixin,
    badge,
    local_time,
    mask_address,
)
from calendars.admin_panel import (
    TimelineEntry,
    panel_counts_register,
    timeline_source_register,
)
from calendars.models import Booking
from invitations.admin import DELIVERY_TONES
from scheduling.models import SchedulingMessage
from scheduling.selectors import refused_callbacks_by_reason

# A body shown in full up to this size; a larger one (up to CALLBACK_MAX_BYTES) is cut.
BODY_DISPLAY_MAX_BYTES = 256 * 1024
UID_LIST_MAX = 48


@admin.register(SchedulingMessage)
class SchedulingMessageAdmin(ReadOnlyPagesMixin, OperatorTimeZoneMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "method",
        "uid_short",
        "sequence",
        "sender_masked",
        "recipient_masked",
        "received",
        "delivery_state",
    )
    list_filter = ("method", "is_mailbox", "delivery__status")
    search_fields = ("uid", "=sender", "=recipient")
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
        "delivery_link",
        "body_text",
        "body_sha256",
        "dedupe_key",
        "received_at",
    )
    exclude = ("delivery",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[SchedulingMessage]:
        queryset = super().get_queryset(request).select_related("delivery")
        # The list never needs the bodies (up to 1 MiB each); a message's page does.
        if request.resolver_match and (request.resolver_match.url_name or "").endswith(
            "changelist"
        ):
            queryset = queryset.defer("delivery__body")
        return queryset

    @admin.display(description="UID", ordering="uid")
    def uid_short(self, obj: SchedulingMessage) -> str:
        uid = obj.uid
        return uid if len(uid) <= UID_LIST_MAX else uid[: UID_LIST_MAX - 1] + "…"

    @admin.display(description="sender", ordering="sender")
    def sender_masked(self, obj: SchedulingMessage) -> str:
        return mask_address(obj.sender)

    @admin.display(description="recipient", ordering="recipient")
    def recipient_masked(self, obj: SchedulingMessage) -> str:
        return mask_address(obj.recipient)

    @admin.display(description="received (your time zone)", ordering="received_at")
    def received(self, obj: SchedulingMessage) -> str:
        return local_time(obj.received_at)

    @admin.display(description="delivery", ordering="delivery__status")
    def delivery_state(self, obj: SchedulingMessage) -> SafeString:
        delivery = obj.delivery
        url = reverse("admin:invitations_delivery_change", args=[delivery.pk])
        return format_html(
            '{} <a href="{}">delivery</a>',
            badge(delivery.get_status_display(), DELIVERY_TONES.get(delivery.status, "info")),
            url,
        )

    @admin.display(description="delivery")
    def delivery_link(self, obj: SchedulingMessage) -> SafeString:
        url = reverse("admin:invitations_delivery_change", args=[obj.delivery_id])
        return format_html('<a href="{}">delivery #{} of this message</a>', url, obj.delivery_id)

    @admin.display(description="iCalendar body (as received)")
    def body_text(self, obj: SchedulingMessage) -> SafeString:
        """Each physical line as received; continuation lines (RFC 5545 section 3.1 folding)
        are marked so the folding stays visible. Escaped: the body is untrusted input."""
        raw = obj.body
        note = ""
        if len(raw) > BODY_DISPLAY_MAX_BYTES:
            note = f"(first {BODY_DISPLAY_MAX_BYTES // 1024} KiB of {len(raw)} bytes)"
            raw = raw[:BODY_DISPLAY_MAX_BYTES]
        lines = raw.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        rendered = format_html_join(
            "\n",
            '<span class="{}">{}</span>',
            (("cv-cont" if line[:1] in (" ", "\t") else "cv-line", line) for line in lines),
        )
        return format_html('<pre class="cv-ical">{}</pre>{}', rendered, note)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


# --- The console's index panel and booking timeline ---------------------------------------------


def _refusals(now: dt.datetime) -> dict[str, Any]:
    # Counted per minute in the shared cache, not in a table (no row per refusal).
    return {"refused_last_hour": dict(sorted(refused_callbacks_by_reason().items()))}


def _messages_timeline(booking: Booking) -> list[TimelineEntry]:
    """The scheduling messages received about the booking's UID; one query."""
    messages = (
        SchedulingMessage.objects.filter(uid=booking.ical_uid)
        .only("pk", "method", "sequence", "sender", "recipient", "received_at", "uid")
        .order_by("received_at", "pk")
    )
    return [
        TimelineEntry(
            at=message.received_at,
            kind="message",
            title=f"{message.method} received (SEQUENCE {message.sequence})",
            source="CalDAV scheduling callback",
            detail=f"{mask_address(message.sender)} → {mask_address(message.recipient)}",
            link_url=reverse("admin:scheduling_schedulingmessage_change", args=[message.pk]),
        )
        for message in messages
    ]


panel_counts_register("refusals", _refusals)
timeline_source_register("messages", _messages_timeline)
