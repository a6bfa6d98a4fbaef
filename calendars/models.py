"""The shared schema: users, calendars, schedules, Google accounts, bookings and transitions.

Invariants are database constraints (docs/style.md rule 3). The one that spans two tables, "a
schedule's calendar belongs to the schedule's owner", is enforced by a trigger installed in
migration 0002 on both SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
import zoneinfo
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from calendars.fields import EncryptedJSONField


def validate_time_zone(value: str) -> None:
    """Accept only IANA zone names known to the system's tz database."""
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            "%(value)s is not an IANA time zone name (for example Europe/Paris).",
            params={"value": value},
        )


class Language(models.TextChoices):
    EN = "en", "English"
    FR = "fr", "Français"
    DE = "de", "Deutsch"
    NL = "nl", "Nederlands"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A subscriber or operator. The email address is the login."""

    email = models.EmailField("email address", max_length=254, unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    language = models.CharField(max_length=8, choices=Language.choices, default=Language.EN)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return self.full_name or self.email


class Provider(models.TextChoices):
    CALDAV = "caldav", "CalDAV"
    GOOGLE = "google", "Google Calendar"


class GoogleAccount(models.Model):
    """A subscriber's OAuth grant to Google. Credentials are encrypted at rest."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="google_accounts"
    )
    subject = models.CharField("Google subject id", max_length=255, unique=True)
    credentials = EncryptedJSONField(null=True, blank=True)
    scopes = models.JSONField(default=list, blank=True)
    revoked = models.BooleanField(default=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Google account {self.subject}"


class CalendarQuerySet(models.QuerySet["Calendar"]):
    def connected(self) -> CalendarQuerySet:
        return self.filter(connected=True)

    def google(self) -> CalendarQuerySet:
        return self.filter(provider=Provider.GOOGLE)


class Calendar(models.Model):
    """A calendar a subscriber owns on a CalDAV server or on Google."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendars"
    )
    provider = models.CharField(max_length=16, choices=Provider.choices)
    display_name = models.CharField(max_length=255, blank=True)
    # The Google calendar id, or the CalDAV collection URL.
    remote_id = models.CharField(max_length=1024)
    google_account = models.ForeignKey(
        GoogleAccount, null=True, blank=True, on_delete=models.SET_NULL, related_name="calendars"
    )
    connected = models.BooleanField(default=True)
    is_mailbox = models.BooleanField(
        "linked to a Messages mailbox",
        default=False,
        help_text="Invitations from this calendar go out through the La Suite Messages API.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CalendarQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "provider", "remote_id"], name="calendar_unique_remote_per_owner"
            ),
            models.CheckConstraint(
                condition=models.Q(provider__in=Provider.values), name="calendar_provider_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.remote_id


class Schedule(models.Model):
    """A public booking page. Its calendar is the owner's *default calendar*."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="schedules"
    )
    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200, blank=True)
    calendar = models.ForeignKey(Calendar, on_delete=models.PROTECT, related_name="schedules")
    auto_confirm = models.BooleanField(default=False)
    slot_minutes = models.PositiveIntegerField(default=30)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(slot_minutes__gte=5, slot_minutes__lte=24 * 60),
                name="schedule_slot_minutes_range",
            ),
        ]

    def __str__(self) -> str:
        return self.title or self.slug

    def clean(self) -> None:
        if self.calendar_id and self.owner_id and self.calendar.owner_id != self.owner_id:
            raise ValidationError({"calendar": "A schedule's calendar must belong to its owner."})


class BookingStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    BOOKED = "booked", "Booked"
    DECLINED = "declined", "Declined"
    CANCELLED = "cancelled", "Cancelled"


class PublishState(models.TextChoices):
    """Whether the booking's calendar reflects its status yet (Convoke to the provider)."""

    PENDING = "pending", "Pending"
    PUBLISHED = "published", "Published"
    FAILED = "failed", "Failed"


def new_ical_uid() -> str:
    return f"{uuid.uuid4()}@convoke"


class BookingQuerySet(models.QuerySet["Booking"]):
    def active(self) -> BookingQuerySet:
        return self.filter(status__in=[BookingStatus.REQUESTED, BookingStatus.BOOKED])


class Booking(models.Model):
    """A bookee's slot on a subscriber's calendar (docs/design.md 1.3)."""

    calendar = models.ForeignKey(Calendar, on_delete=models.PROTECT, related_name="bookings")
    schedule = models.ForeignKey(
        Schedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="bookings"
    )
    organizer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="bookings"
    )
    attendee_name = models.CharField(max_length=200)
    attendee_email = models.EmailField(max_length=254)
    attendee_language = models.CharField(
        max_length=8, choices=Language.choices, default=Language.EN
    )
    attendee_time_zone = models.CharField(
        max_length=64, default="UTC", validators=[validate_time_zone]
    )
    start = models.DateTimeField()
    end = models.DateTimeField()
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=BookingStatus.choices, default=BookingStatus.REQUESTED
    )
    ical_uid = models.CharField("iCalendar UID", max_length=255, unique=True, default=new_ical_uid)
    google_event_id = models.CharField(max_length=1024, null=True, blank=True)
    # What Convoke last saw of the Google event (the answer to its own write, a listing, a
    # read): the ETag that every patch and delete sends as ``If-Match``, the event's status,
    # and its ``updated`` time, so that an older state is never applied over a newer one.
    google_etag = models.CharField(max_length=200, blank=True)
    google_event_status = models.CharField(max_length=16, blank=True)
    google_updated = models.DateTimeField(null=True, blank=True)
    # A change made in Google moved the booking onto another active booking's time: the
    # calendar is the truth, so the booking follows; operators see it, and the no-overlap
    # constraint leaves it out.
    overlaps = models.BooleanField("overlaps another booking", default=False)
    sequence = models.PositiveIntegerField(default=0)
    # The bookee's latest answer to the invitation (iCalendar PARTSTAT), whoever relayed it.
    attendee_partstat = models.CharField(max_length=16, blank=True)
    publish_state = models.CharField(
        "calendar publish state",
        max_length=16,
        choices=PublishState.choices,
        default=PublishState.PENDING,
    )
    publish_error = models.CharField(max_length=500, blank=True)
    # The status the calendar provider last reflected (blank: nothing written there yet), a
    # lease that lets one publish at a time write for this booking, and when the publish sweep
    # enqueues it again if it is still pending (its enqueue or retry was lost).
    provider_status = models.CharField(max_length=16, choices=BookingStatus.choices, blank=True)
    publish_lease_until = models.DateTimeField(null=True, blank=True)
    publish_due_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BookingQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end__gt=models.F("start")), name="booking_end_after_start"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=BookingStatus.values), name="booking_status_valid"
            ),
            models.UniqueConstraint(
                fields=["calendar", "google_event_id"],
                condition=models.Q(google_event_id__isnull=False),
                name="booking_google_event_unique_per_calendar",
            ),
        ]
        indexes = [
            models.Index(fields=["calendar", "start"], name="booking_calendar_start"),
            models.Index(fields=["publish_state", "publish_due_at"], name="booking_publish_due"),
        ]

    def __str__(self) -> str:
        return f"{self.title} ({self.start:%Y-%m-%d %H:%M})"


class TransitionSource(models.TextChoices):
    API = "api", "API"
    EMAIL_LINK = "email_link", "Email link"
    GOOGLE_PUSH = "google_push", "Google push notification"
    CALDAV_REPLY = "caldav_reply", "CalDAV reply"
    ADMIN = "admin", "Admin"


class BookingTransition(models.Model):
    """One recorded change of a booking's status (from, to, source, time)."""

    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="transitions")
    from_status = models.CharField(max_length=16, choices=BookingStatus.choices, blank=True)
    to_status = models.CharField(max_length=16, choices=BookingStatus.choices)
    source = models.CharField(max_length=16, choices=TransitionSource.choices)
    at = models.DateTimeField(default=timezone.now)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(source__in=TransitionSource.values),
                name="transition_source_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status} ({self.source})"
