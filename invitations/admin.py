"""Operators' view of deliveries: the dead-letter queue, retry and mark-dead, and a preview of
the email a delivery sends (rendered, never sent)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
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
from calendars.admin_panel import (
    TimelineEntry,
    panel_counts_register,
    timeline_source_register,
)
from calendars.models import Booking
from invitations.inbound import inbound_replies_retry
from invitations.models import (
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    InboundReply,
    InboundReplyStatus,
)
from invitations.notices import DeliveryNotNeeded
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


DELIVERY_TONES: dict[str, str] = {
    DeliveryStatus.PENDING: "wait",
    DeliveryStatus.SENDING: "wait",
    DeliveryStatus.SENT: "ok",
    DeliveryStatus.FAILED: "wait",
    DeliveryStatus.DEAD: "bad",
    DeliveryStatus.SKIPPED: "off",
}
UID_SHOWN_MAX = 40


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyPagesMixin, OperatorTimeZoneMixin, admin.ModelAdmin):
    """Every email Convoke sends: calendar messages and the bookings' notices alike."""

    list_display = (
        "id",
        "about",
        "recipient_masked",
        "transport_code",
        "status_badge",
        "attempts",
        "next_attempt",
        "last_error",
        "created_at",
        "preview_link",
    )
    list_filter = ("status", "kind", "transport", "method")
    search_fields = ("message_id_header", "provider_message_id", "uid", "=recipient")
    date_hierarchy = "created_at"
    readonly_fields = (
        "kind",
        "method",
        "uid",
        "recurrence_id",
        "sequence",
        "sender",
        "recipient",
        "booking",
        "google_account",
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
    exclude = ("body", "dtstamp", "language", "time_zone")
    actions = ["retry_now", "mark_dead"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        # The calendar body (up to 1 MiB) is not needed to list or show a delivery.
        return super().get_queryset(request).defer("body")

    def get_urls(self) -> list[URLPattern]:
        preview = path(
            "<path:object_id>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="invitations_delivery_preview",
        )
        return [preview, *super().get_urls()]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="email", ordering="kind")
    def about(self, obj: Delivery) -> SafeString:
        """The method and event of a calendar message, the kind of a notice; with a link to
        the booking it is about."""
        if obj.kind == DeliveryKind.ITIP:
            uid = obj.uid if len(obj.uid) <= UID_SHOWN_MAX else obj.uid[: UID_SHOWN_MAX - 1] + "…"
            text = format_html("{} {}", obj.method, uid)
        else:
            text = format_html("{}", obj.get_kind_display())
        if obj.booking_id is None:
            return text
        url = reverse("admin:calendars_booking_change", args=[obj.booking_id])
        return format_html('{} (<a href="{}">booking #{}</a>)', text, url, obj.booking_id)

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
        except DeliveryNotNeeded as exc:
            error = f"This email is not needed any more: {exc.reason}."
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
    InboundReplyStatus.REFUSED: "bad",
}


@admin.register(InboundReply)
class InboundReplyAdmin(ReadOnlyPagesMixin, OperatorTimeZoneMixin, admin.ModelAdmin):
    """Mail clients' own answers received by email: what was applied, ignored, failed or
    refused as not believable (invitations.inbound_trust; the reason is in last_error)."""

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


# --- The console's index panel and booking timeline ---------------------------------------------


def _deliveries_counts(now: dt.datetime) -> dict[str, Any]:
    by_status = dict(
        Delivery.objects.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.DEAD]
        )
        .values_list("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {
        "deliveries_pending": by_status.get(DeliveryStatus.PENDING, 0),
        "deliveries_failed": by_status.get(DeliveryStatus.FAILED, 0),
        "deliveries_dead": by_status.get(DeliveryStatus.DEAD, 0),
    }


def _deliveries_timeline(booking: Booking) -> list[TimelineEntry]:
    """Every email about the booking: its own (subscriber's notices, the bookee's
    invitations) and those of its UID relayed from the CalDAV server; one query."""
    deliveries = (
        Delivery.objects.filter(Q(booking=booking) | Q(uid=booking.ical_uid))
        .only(
            "pk",
            "kind",
            "method",
            "recipient",
            "transport",
            "status",
            "attempts",
            "last_error",
            "created_at",
            "updated_at",
            "sent_at",
        )
        .order_by("created_at", "pk")
    )
    entries: list[TimelineEntry] = []
    for delivery in deliveries:
        what = (
            f"{delivery.method} email"
            if delivery.kind == DeliveryKind.ITIP
            else delivery.get_kind_display().split(" (")[0].lower() + " email"
        )
        detail = f"{delivery.attempts} attempt(s) to {mask_address(delivery.recipient)}"
        if delivery.last_error:
            detail += f"; last error: {delivery.last_error}"
        entries.append(
            TimelineEntry(
                at=delivery.sent_at or delivery.updated_at or delivery.created_at,
                kind="delivery",
                title=f"{what} {delivery.get_status_display().lower()}",
                source=delivery.get_transport_display(),
                detail=detail,
                tone=DELIVERY_TONES.get(delivery.status, "info"),
                link_url=reverse("admin:invitations_delivery_change", args=[delivery.pk]),
            )
        )
    return entries


panel_counts_register("deliveries", _deliveries_counts)
timeline_source_register("deliveries", _deliveries_timeline)
