"""Operators' view of deliveries: the dead-letter queue, retry and mark-dead, and a preview of
the email a delivery sends (rendered, never sent)."""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from calendars.admin_display import (
    OperatorTimeZoneMixin,
    ReadOnlyPagesMixin,
    badge,
    local_time,
    mask_address,
)
from calendars.admin_panel import DELIVERY_TONES
from invitations.inbound import inbound_replies_retry
from invitations.models import Delivery, DeliveryStatus, InboundReply, InboundReplyStatus
from invitations.services import (
    RetryItem,
    deliveries_mark_dead,
    deliveries_retry,
    delivery_email_build,
)


@dataclass(frozen=True)
class EmailPreview:
    subject: str
    sender: str
    to: str
    reply_to: str
    message_id: str
    html: str
    text: str
    attachments: list[tuple[str, str, str]]  # (filename, content type, text)


def email_preview(*, delivery: Delivery) -> EmailPreview:
    """The email ``delivery`` would send, taken apart for reading. Nothing is sent.

    Raises ``ValueError`` when the stored message cannot be rendered.
    """
    mail = delivery_email_build(delivery=delivery)
    parsed = email.message_from_bytes(mail.message().as_bytes(), policy=email.policy.default)
    html_part = parsed.get_body(("html",))
    text_part = parsed.get_body(("plain",))
    attachments: list[tuple[str, str, str]] = []
    for part in parsed.iter_attachments():
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            payload = b""
        charset = part.get_content_charset() or "utf-8"
        attachments.append(
            (
                part.get_filename() or "(no name)",
                part.get_content_type(),
                payload.decode(charset, "replace"),
            )
        )
    return EmailPreview(
        subject=str(parsed.get("Subject", "")),
        sender=str(parsed.get("From", "")),
        to=str(parsed.get("To", "")),
        reply_to=str(parsed.get("Reply-To", "")),
        message_id=str(parsed.get("Message-ID", "")),
        html=html_part.get_content() if html_part is not None else "",
        text=text_part.get_content() if text_part is not None else "",
        attachments=attachments,
    )


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyPagesMixin, OperatorTimeZoneMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "message_link",
        "recipient_masked",
        "transport_code",
        "status_badge",
        "attempts",
        "next_attempt",
        "last_error",
        "created_at",
        "preview_link",
    )
    list_filter = ("status", "transport", "message__method")
    search_fields = ("message_id_header", "provider_message_id", "message__uid", "=recipient")
    date_hierarchy = "created_at"
    list_select_related = ("message",)
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
        "preview_link",
    )
    actions = ["retry_now", "mark_dead"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        # The message's body (up to 1 MiB) is not needed to list or show a delivery.
        return super().get_queryset(request).defer("message__body")

    def get_urls(self) -> list[URLPattern]:
        preview = path(
            "<path:object_id>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="invitations_delivery_preview",
        )
        return [preview, *super().get_urls()]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="message", ordering="message__received_at")
    def message_link(self, obj: Delivery) -> SafeString:
        url = reverse("admin:scheduling_schedulingmessage_change", args=[obj.message_id])
        return format_html('<a href="{}">{} #{}</a>', url, obj.message.method, obj.message_id)

    @admin.display(description="recipient", ordering="recipient")
    def recipient_masked(self, obj: Delivery) -> str:
        return mask_address(obj.recipient)

    @admin.display(description="transport", ordering="transport")
    def transport_code(self, obj: Delivery) -> SafeString:
        return format_html('<span title="{}">{}</span>', obj.get_transport_display(), obj.transport)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Delivery) -> SafeString:
        return badge(obj.get_status_display(), DELIVERY_TONES.get(obj.status, "info"))

    @admin.display(description="next attempt", ordering="next_attempt_at")
    def next_attempt(self, obj: Delivery) -> str:
        if obj.status not in (DeliveryStatus.PENDING, DeliveryStatus.FAILED):
            return "—"
        return local_time(obj.next_attempt_at)

    @admin.display(description="email")
    def preview_link(self, obj: Delivery) -> SafeString:
        url = reverse("admin:invitations_delivery_preview", args=[obj.pk])
        return format_html('<a href="{}">preview</a>', url)

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The rendered email of one delivery: HTML in a sandboxed frame (no scripts, no
        forms, no same-origin access), the text part and the attachments as text."""
        delivery = self.get_object(request, object_id)
        if delivery is None:
            raise Http404("No such delivery.")
        if not self.has_view_permission(request, delivery):
            raise PermissionDenied
        preview: EmailPreview | None = None
        error = ""
        try:
            preview = email_preview(delivery=delivery)
        except ValueError:
            error = "The stored iCalendar message cannot be rendered into an email."
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": delivery,
            "title": f"Email of delivery #{delivery.pk}",
            "preview": preview,
            "error": error,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/invitations/delivery/preview.html", context)

    def _report(
        self, request: HttpRequest, items: list[RetryItem], *, done: str, not_done: str
    ) -> None:
        changed = [item.delivery_id for item in items if item.retried]
        skipped = [item for item in items if not item.retried]
        if changed:
            self.message_user(
                request,
                f"{len(changed)} deliveries {done}: " + ", ".join(f"#{pk}" for pk in changed),
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                f"{not_done}: " + ", ".join(f"#{i.delivery_id} ({i.note})" for i in skipped),
                messages.WARNING,
            )

    @admin.action(description="Retry the selected deliveries now", permissions=["change"])
    def retry_now(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        items = deliveries_retry(ids=list(queryset.values_list("pk", flat=True)))
        self._report(request, items, done="queued for sending", not_done="Not retried")

    @admin.action(
        description="Mark the selected deliveries dead (stop retrying)", permissions=["change"]
    )
    def mark_dead(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        items = deliveries_mark_dead(ids=list(queryset.values_list("pk", flat=True)))
        self._report(request, items, done="marked dead", not_done="Not marked dead")


INBOUND_TONES = {
    InboundReplyStatus.PENDING: "wait",
    InboundReplyStatus.APPLIED: "ok",
    InboundReplyStatus.IGNORED: "off",
    InboundReplyStatus.FAILED: "bad",
}


@admin.register(InboundReply)
class InboundReplyAdmin(ReadOnlyPagesMixin, OperatorTimeZoneMixin, admin.ModelAdmin):
    """Mail clients' own answers received by email: what was applied, ignored or failed."""

    list_display = (
        "id",
        "status_badge",
        "attempts",
        "uid",
        "attendee_masked",
        "organizer_masked",
        "received",
        "last_error",
    )
    list_filter = ("status",)
    search_fields = ("uid", "=attendee", "=organizer")
    date_hierarchy = "received_at"
    fields = (
        "status",
        "attempts",
        "uid",
        "attendee",
        "organizer",
        "dtstamp",
        "last_error",
        "received_at",
        "updated_at",
    )
    readonly_fields = fields
    actions = ["apply_again"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: InboundReply) -> SafeString:
        return badge(obj.get_status_display(), INBOUND_TONES[InboundReplyStatus(obj.status)])

    @admin.display(description="attendee", ordering="attendee")
    def attendee_masked(self, obj: InboundReply) -> str:
        return mask_address(obj.attendee)

    @admin.display(description="organizer", ordering="organizer")
    def organizer_masked(self, obj: InboundReply) -> str:
        return mask_address(obj.organizer)

    @admin.display(description="received", ordering="received_at")
    def received(self, obj: InboundReply) -> str:
        return local_time(obj.received_at)

    @admin.action(description="Apply the selected failed replies again", permissions=["change"])
    def apply_again(self, request: HttpRequest, queryset: QuerySet[InboundReply]) -> None:
        count = inbound_replies_retry(reply_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{count} failed repl(y/ies) queued to be applied again.")
