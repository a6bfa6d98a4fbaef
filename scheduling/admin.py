"""Operators' view of received scheduling messages (read-only: they are a record).

The list masks addresses (``b***@example.net``); a message's own page shows them in full,
with the iCalendar body exactly as received, folded lines and all, escaped.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Prefetch, QuerySet
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
from calendars.admin_panel import DELIVERY_TONES
from invitations.models import Delivery
from scheduling.models import RefusedCallback, SchedulingMessage

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
    list_filter = ("method", "is_mailbox", "deliveries__status")
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
        "deliveries_link",
        "body_text",
        "body_sha256",
        "dedupe_key",
        "received_at",
    )
    exclude = ("body",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[SchedulingMessage]:
        deliveries = Delivery.objects.only("pk", "message_id", "status").order_by("pk")
        queryset = (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("deliveries", queryset=deliveries))
        )
        # The list never needs the bodies (up to 1 MiB each); a message's page does.
        if request.resolver_match and (request.resolver_match.url_name or "").endswith(
            "changelist"
        ):
            queryset = queryset.defer("body")
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

    @admin.display(description="delivery")
    def delivery_state(self, obj: SchedulingMessage) -> SafeString | str:
        deliveries = list(obj.deliveries.all())
        if not deliveries:
            return "—"
        badges = format_html_join(
            " ",
            "{}",
            (
                (badge(d.get_status_display(), DELIVERY_TONES.get(d.status, "info")),)
                for d in deliveries
            ),
        )
        url = reverse("admin:invitations_delivery_changelist") + f"?message__id__exact={obj.pk}"
        return format_html('{} <a href="{}">deliveries</a>', badges, url)

    @admin.display(description="deliveries")
    def deliveries_link(self, obj: SchedulingMessage) -> SafeString:
        count = len(obj.deliveries.all())
        url = reverse("admin:invitations_delivery_changelist") + f"?message__id__exact={obj.pk}"
        return format_html('<a href="{}">{} delivery(ies) of this message</a>', url, count)

    @admin.display(description="iCalendar body (as received)")
    def body_text(self, obj: SchedulingMessage) -> SafeString:
        """Each physical line as received; continuation lines (RFC 5545 section 3.1 folding)
        are marked so the folding stays visible. Escaped: the body is untrusted input."""
        raw = bytes(obj.body)
        note = ""
        if len(raw) > BODY_DISPLAY_MAX_BYTES:
            raw = raw[:BODY_DISPLAY_MAX_BYTES]
            note = f"(first {BODY_DISPLAY_MAX_BYTES // 1024} KiB of {len(bytes(obj.body))} bytes)"
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


@admin.register(RefusedCallback)
class RefusedCallbackAdmin(ReadOnlyPagesMixin, OperatorTimeZoneMixin, admin.ModelAdmin):
    """Refused callbacks of the last day (reason and time only; pruned after a day)."""

    list_display = ("reason", "at")
    list_filter = ("reason",)
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
