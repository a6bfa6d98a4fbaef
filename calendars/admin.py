"""Operators' view of the shared schema. Tokens and credentials are never shown."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from calendars.models import Booking, BookingTransition, Calendar, GoogleAccount, Schedule, User


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
class GoogleAccountAdmin(admin.ModelAdmin):
    list_display = ("subject", "owner", "revoked", "created_at", "updated_at")
    list_filter = ("revoked",)
    search_fields = ("subject", "owner__email")
    list_select_related = ("owner",)
    # The encrypted credentials are deliberately not a field of this form.
    fields = ("owner", "subject", "scopes", "revoked", "revoked_at")
    readonly_fields = ("owner", "subject", "scopes", "revoked_at")


@admin.register(Calendar)
class CalendarAdmin(admin.ModelAdmin):
    list_display = ("__str__", "owner", "provider", "connected", "is_mailbox", "updated_at")
    list_filter = ("provider", "connected", "is_mailbox")
    search_fields = ("display_name", "remote_id", "owner__email")
    list_select_related = ("owner",)
    raw_id_fields = ("owner", "google_account")


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    list_display = ("slug", "title", "owner", "calendar", "auto_confirm", "slot_minutes", "active")
    list_filter = ("active", "auto_confirm", "calendar__provider")
    search_fields = ("slug", "title", "owner__email")
    list_select_related = ("owner", "calendar")
    raw_id_fields = ("owner", "calendar")


class BookingTransitionInline(admin.TabularInline):
    model = BookingTransition
    extra = 0
    can_delete = False
    fields = ("at", "from_status", "to_status", "source", "detail")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "status",
        "sync_state",
        "sync_error",
        "organizer",
        "attendee_email",
        "start",
        "calendar",
    )
    list_filter = ("status", "sync_state", "calendar__provider")
    search_fields = ("title", "attendee_email", "attendee_name", "organizer__email", "ical_uid")
    date_hierarchy = "start"
    list_select_related = ("organizer", "calendar")
    raw_id_fields = ("calendar", "schedule", "organizer")
    inlines = [BookingTransitionInline]
    actions = ["provider_sync_retry"]

    @admin.action(description="Retry the calendar sync of the selected bookings")
    def provider_sync_retry(self, request, queryset):  # type: ignore[no-untyped-def]
        from calendars.services import booking_sync_retry

        count = booking_sync_retry(booking_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"Calendar sync scheduled again for {count} booking(s).")


@admin.register(BookingTransition)
class BookingTransitionAdmin(admin.ModelAdmin):
    list_display = ("booking", "from_status", "to_status", "source", "at")
    list_filter = ("source", "to_status")
    search_fields = ("booking__title", "booking__ical_uid")
    date_hierarchy = "at"
    list_select_related = ("booking",)
    raw_id_fields = ("booking",)
