"""Operators' view of the shared schema. Tokens and credentials are never shown."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.safestring import SafeString

from calendars.admin_display import (
    OperatorTimeZoneMixin,
    ReadOnlyPagesMixin,
    badge,
    local_time,
    mask_address,
)
from calendars.admin_panel import STATUS_TONES, booking_timeline
from calendars.models import (
    Booking,
    BookingTransition,
    Calendar,
    GoogleAccount,
    Provider,
    PublishState,
    Schedule,
    TransitionSource,
    User,
)
from calendars.services import (
    BookingTransitionError,
    Decision,
    booking_decide,
    booking_publish_retry,
    booking_republish,
)

admin.site.site_header = "Convoke operators' console"
admin.site.site_title = "Convoke"
admin.site.index_title = "Operations"
# Convoke has no public home page: no "View site" link into a 404.
admin.site.site_url = None  # type: ignore[assignment]

# The actions offered as buttons on a booking's own page: (action name, label).
BOOKING_PAGE_ACTIONS = (
    ("confirm", "Confirm"),
    ("deny", "Deny"),
    ("cancel", "Cancel booking"),
    ("republish", "Publish to its calendar again"),
)
PUBLISH_TONES: dict[str, str] = {
    PublishState.PENDING: "wait",
    PublishState.PUBLISHED: "ok",
    PublishState.FAILED: "bad",
}


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ("email",)
    list_display = ("email", "full_name", "language", "time_zone", "is_staff", "is_active")
    list_filter = ("is_staff", "is_active", "language")
    search_fields = ("email", "full_name")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name", "language", "time_zone")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)


@admin.register(GoogleAccount)
class GoogleAccountAdmin(ReadOnlyPagesMixin, OperatorTimeZoneMixin, admin.ModelAdmin):
    """Google grants: connected or revoked, and the scopes granted. The encrypted credentials
    are never loaded for a page, let alone shown."""

    list_display = ("subject", "owner", "connection", "scope_names", "calendar_count", "updated_at")
    list_filter = ("revoked",)
    search_fields = ("subject", "owner__email")
    list_select_related = ("owner",)
    date_hierarchy = "created_at"
    fields = ("owner", "subject", "connection", "scope_names", "revoked_at", "created_at")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[GoogleAccount]:
        return (
            super()
            .get_queryset(request)
            .defer("credentials")
            .annotate(calendars_total=Count("calendars"))
        )

    @admin.display(description="connection", ordering="revoked")
    def connection(self, obj: GoogleAccount) -> SafeString:
        if obj.revoked:
            return badge("Revoked", "bad", title="Google refused the grant; reconnect needed")
        return badge("Connected", "ok")

    @admin.display(description="scopes")
    def scope_names(self, obj: GoogleAccount) -> str:
        scopes = obj.scopes if isinstance(obj.scopes, list) else []
        return ", ".join(str(scope).rsplit("/", 1)[-1] for scope in scopes) or "—"

    @admin.display(description="calendars", ordering="calendars_total")
    def calendar_count(self, obj: GoogleAccount) -> int:
        return getattr(obj, "calendars_total", 0)


@admin.register(Calendar)
class CalendarAdmin(OperatorTimeZoneMixin, admin.ModelAdmin):
    list_display = (
        "__str__",
        "owner",
        "provider",
        "connection",
        "last_sync",
        "is_mailbox",
        "updated_at",
    )
    list_filter = ("provider", "connected", "is_mailbox", "google_account__revoked")
    search_fields = ("display_name", "remote_id", "owner__email")
    list_select_related = ("owner", "google_account", "google_sync_state")
    date_hierarchy = "created_at"
    raw_id_fields = ("owner", "google_account")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Calendar]:
        return super().get_queryset(request).defer("google_account__credentials")

    @admin.display(description="connection", ordering="connected")
    def connection(self, obj: Calendar) -> SafeString:
        account = obj.google_account
        if obj.provider == Provider.GOOGLE and account is not None and account.revoked:
            return badge("Revoked", "bad", title="the Google account's grant was revoked")
        if not obj.connected:
            return badge("Disconnected", "off")
        return badge("Connected", "ok")

    @admin.display(description="last Google sync")
    def last_sync(self, obj: Calendar) -> SafeString | str:
        state = getattr(obj, "google_sync_state", None) if obj.provider == Provider.GOOGLE else None
        if state is None:
            return "—"
        if state.last_failure_at and (
            state.last_synced_at is None or state.last_failure_at > state.last_synced_at
        ):
            return badge(
                f"Failed {local_time(state.last_failure_at)}", "bad", title=state.last_error
            )
        if state.last_synced_at:
            return badge(f"Synced {local_time(state.last_synced_at)}", "ok")
        return badge("Not synced yet", "wait")


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "owner", "calendar", "auto_confirm", "slot_minutes", "active")
    list_filter = ("active", "auto_confirm", "calendar__provider")
    search_fields = ("slug", "title", "owner__email")
    list_select_related = ("owner", "calendar")
    raw_id_fields = ("owner", "calendar")


@admin.register(Booking)
class BookingAdmin(OperatorTimeZoneMixin, admin.ModelAdmin):
    """Bookings: read-only records; their status changes only through the booking service
    (the actions below, each recorded as a transition with source ``admin``)."""

    list_display = (
        "title",
        "status_badge",
        "provider",
        "publish_badge",
        "organizer",
        "attendee",
        "start_local",
        "calendar",
    )
    list_filter = ("status", "publish_state", "overlaps", "calendar__provider")
    search_fields = ("title", "attendee_email", "attendee_name", "organizer__email", "ical_uid")
    date_hierarchy = "start"
    ordering = ("-start", "-pk")
    list_select_related = ("organizer", "calendar")
    actions = ["confirm", "deny", "cancel", "republish", "publish_retry"]
    fieldsets = (
        (
            None,
            {"fields": ("title", "status", "calendar", "schedule", "organizer", "start", "end")},
        ),
        (
            "Attendee",
            {
                "fields": (
                    "attendee_name",
                    "attendee_email",
                    "attendee_language",
                    "attendee_time_zone",
                    "attendee_partstat",
                )
            },
        ),
        (
            "Calendar provider",
            {
                "fields": (
                    "publish_state",
                    "publish_error",
                    "provider_status",
                    "overlaps",
                    "google_event_id",
                    "google_event_status",
                    "google_etag",
                    "google_updated",
                    "ical_uid",
                    "sequence",
                )
            },
        ),
        (
            "Record",
            {
                "classes": ("collapse",),
                "fields": ("time_zone", "description", "created_at", "updated_at"),
            },
        ),
    )
    readonly_fields = flatten_fieldsets(fieldsets)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Booking) -> SafeString:
        return badge(obj.get_status_display(), STATUS_TONES.get(obj.status, "info"))

    @admin.display(description="provider", ordering="calendar__provider")
    def provider(self, obj: Booking) -> str:
        return obj.calendar.get_provider_display()

    @admin.display(description="published", ordering="publish_state")
    def publish_badge(self, obj: Booking) -> SafeString:
        tone = PUBLISH_TONES.get(obj.publish_state, "info")
        return badge(obj.get_publish_state_display(), tone, title=obj.publish_error)

    @admin.display(description="attendee", ordering="attendee_name")
    def attendee(self, obj: Booking) -> str:
        return f"{obj.attendee_name} <{mask_address(obj.attendee_email)}>"

    @admin.display(description="start (your time zone)", ordering="start")
    def start_local(self, obj: Booking) -> str:
        return local_time(obj.start)

    def render_change_form(  # type: ignore[override]
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Booking | None = None,
    ) -> HttpResponse:
        if obj is not None:
            context["timeline"] = booking_timeline(booking=obj)
            context["operator_zone"] = timezone.get_current_timezone_name()
            context["booking_actions"] = BOOKING_PAGE_ACTIONS
            # Every field is read-only: the status changes through the actions only.
            context["show_save"] = context["show_save_and_continue"] = False
            context["show_save_and_add_another"] = False
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _apply(
        self,
        request: HttpRequest,
        queryset: QuerySet[Booking],
        verb: str,
        service: Callable[..., Any],
    ) -> HttpResponse | None:
        """Run ``service`` for each selected booking with source ``admin``; report per
        booking; from a booking's own page, go back to it."""
        detail = {"operator": request.user.pk}
        ids = list(queryset.order_by("pk").values_list("pk", flat=True))
        done: list[str] = []
        unchanged: list[str] = []
        refused: list[str] = []
        for booking_id in ids:
            try:
                result = service(
                    booking_id=booking_id, source=TransitionSource.ADMIN, detail=detail
                )
            except BookingTransitionError as exc:
                refused.append(f"#{booking_id} is {exc.from_status}")
                continue
            except Booking.DoesNotExist:
                refused.append(f"#{booking_id} no longer exists")
                continue
            (done if getattr(result, "changed", True) else unchanged).append(f"#{booking_id}")
        if done:
            self.message_user(request, f"{verb}: {', '.join(done)}.", messages.SUCCESS)
        if unchanged:
            self.message_user(
                request, f"Already so, nothing changed: {', '.join(unchanged)}.", messages.INFO
            )
        if refused:
            self.message_user(request, f"Not possible: {'; '.join(refused)}.", messages.WARNING)
        if request.POST.get("_from") == "change" and len(ids) == 1:
            return redirect("admin:calendars_booking_change", ids[0])
        return None

    # Decisions read the booking's Google event first (booking_decide): a change made in
    # Google before the operator's click wins, and the message says the real state.
    @admin.action(description="Confirm the selected bookings", permissions=["change"])
    def confirm(self, request: HttpRequest, queryset: QuerySet[Booking]) -> HttpResponse | None:
        return self._apply(
            request, queryset, "Confirmed", partial(booking_decide, decision=Decision.CONFIRM)
        )

    @admin.action(description="Deny the selected bookings", permissions=["change"])
    def deny(self, request: HttpRequest, queryset: QuerySet[Booking]) -> HttpResponse | None:
        return self._apply(
            request, queryset, "Denied", partial(booking_decide, decision=Decision.DENY)
        )

    @admin.action(description="Cancel the selected bookings", permissions=["change"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Booking]) -> HttpResponse | None:
        return self._apply(
            request, queryset, "Cancelled", partial(booking_decide, decision=Decision.CANCEL)
        )

    @admin.action(
        description="Publish the selected bookings to their calendar again",
        permissions=["change"],
    )
    def republish(self, request: HttpRequest, queryset: QuerySet[Booking]) -> HttpResponse | None:
        return self._apply(request, queryset, "Publish scheduled", booking_republish)

    @admin.action(
        description="Retry publishing the selected bookings to their calendar",
        permissions=["change"],
    )
    def publish_retry(self, request: HttpRequest, queryset: QuerySet[Booking]) -> None:
        count = booking_publish_retry(booking_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Publish scheduled again for {count} booking(s).")


@admin.register(BookingTransition)
class BookingTransitionAdmin(ReadOnlyPagesMixin, admin.ModelAdmin):
    """The record of every status change; only the booking service writes it."""

    list_display = ("booking", "from_status", "to_status", "source", "at")
    fields = ("booking", "from_status", "to_status", "source", "at", "detail")
    readonly_fields = fields
    list_filter = ("source", "to_status")
    search_fields = ("booking__title", "booking__ical_uid")
    date_hierarchy = "at"
    list_select_related = ("booking",)
