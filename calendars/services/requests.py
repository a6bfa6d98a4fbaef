"""A bookee asks for a slot (docs/architecture.md, "bookings"): :func:`booking_request`."""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from calendars import hooks
from calendars.hooks import BookingEmail, BookingEmailRequest
from calendars.models import (
    Booking,
    BookingStatus,
    BookingTransition,
    Calendar,
    Provider,
    PublishState,
    Schedule,
    TransitionSource,
)
from calendars.providers import TransientProviderError, google
from calendars.services.publish import booking_publish_enqueue
from calendars.services.transitions import booking_transition

logger = logging.getLogger(__name__)

ACTIVE_STATUSES = (BookingStatus.REQUESTED, BookingStatus.BOOKED)
NO_OVERLAP_CONSTRAINT = "booking_no_overlap_per_calendar"
MAX_TITLE_LENGTH = 255


class BookingRequestInvalid(ValueError):
    """The request itself is wrong (times, duration); ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class SlotUnavailable(Exception):
    """The slot overlaps another active booking, or Google says the subscriber is busy."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the slot is not free ({reason})")
        self.reason = reason


class ScheduleUnavailable(Exception):
    """The schedule cannot take bookings now: its calendar is disconnected or unreachable."""

    def __init__(self, reason: str, *, retry_after_seconds: int | None = None) -> None:
        super().__init__(f"the schedule cannot take bookings now ({reason})")
        self.reason = reason
        self.retry_after_seconds = retry_after_seconds


def booking_request(
    *,
    schedule_id: int,
    attendee_name: str,
    attendee_email: str,
    start: dt.datetime,
    end: dt.datetime | None = None,
    attendee_language: str = "en",
    attendee_time_zone: str = "UTC",
    description: str = "",
    source: TransitionSource | str = TransitionSource.API,
) -> Booking:
    """A bookee asks for a slot on a schedule; returns the new booking.

    ``end`` defaults to ``start`` plus the schedule's slot length, and a booking lasts at most
    that long. The slot must be in the future (at most ``BOOKING_MAX_DAYS_AHEAD`` days
    ahead), overlap no requested or booked booking of the calendar (checked under a lock on
    the calendar row, and by an exclusion constraint on PostgreSQL) and, on a Google
    calendar, no busy time in Google's freebusy. With ``auto_confirm`` the booking is booked
    at once. After the commit the booking is published to its calendar and the subscriber's
    email sent (stored in the outbox with the booking).

    Raises :class:`BookingRequestInvalid`, :class:`SlotUnavailable`,
    :class:`ScheduleUnavailable` and ``Schedule.DoesNotExist`` (unknown or inactive).
    """
    schedule = Schedule.objects.select_related("owner", "calendar", "calendar__google_account").get(
        pk=schedule_id, active=True
    )
    calendar = schedule.calendar
    end = _booking_times_check(schedule=schedule, start=start, end=end)
    if attendee_time_zone not in zoneinfo.available_timezones():
        raise BookingRequestInvalid("time_zone", "Unknown time zone.")
    if not calendar.connected:
        raise ScheduleUnavailable("calendar_disconnected")
    # A first look without the lock spares Google a freebusy call for a slot we know is taken.
    if _overlapping(calendar_id=calendar.pk, start=start, end=end):
        raise SlotUnavailable("overlap")
    if calendar.provider == Provider.GOOGLE:
        _google_slot_check(calendar=calendar, start=start, end=end)

    title = f"{schedule.title or schedule.slug}: {attendee_name}"[:MAX_TITLE_LENGTH]
    try:
        with transaction.atomic():
            # The calendar row is the lock every request for this calendar queues on.
            Calendar.objects.select_for_update().only("pk").get(pk=calendar.pk)
            if _overlapping(calendar_id=calendar.pk, start=start, end=end):
                raise SlotUnavailable("overlap")
            booking = Booking.objects.create(
                calendar=calendar,
                schedule=schedule,
                organizer=schedule.owner,
                attendee_name=attendee_name,
                attendee_email=attendee_email,
                attendee_language=attendee_language,
                attendee_time_zone=attendee_time_zone,
                start=start,
                end=end,
                time_zone=schedule.owner.time_zone,
                title=title,
                description=description,
                status=BookingStatus.REQUESTED,
                # Chosen before any call, so a retried insert can never make a second event.
                google_event_id=google.event_id_new()
                if calendar.provider == Provider.GOOGLE
                else None,
                publish_state=PublishState.PENDING,
            )
            BookingTransition.objects.create(
                booking=booking,
                from_status="",
                to_status=BookingStatus.REQUESTED,
                source=TransitionSource(source),
                detail={"schedule": schedule.pk},
            )
            if schedule.auto_confirm:
                booking_transition(
                    booking_id=booking.pk,
                    to_status=BookingStatus.BOOKED,
                    source=source,
                    detail={"auto_confirm": True},
                )
                booking.refresh_from_db()
            booking_publish_enqueue(booking_ids=[booking.pk])
            # The subscriber's email is stored in the outbox with the booking.
            hooks.booking_email_enqueue(
                BookingEmailRequest(
                    booking_id=booking.pk,
                    email=BookingEmail.AUTO_CONFIRMED
                    if schedule.auto_confirm
                    else BookingEmail.REQUEST,
                )
            )
    except IntegrityError as exc:
        if NO_OVERLAP_CONSTRAINT in str(exc):
            raise SlotUnavailable("overlap") from exc
        raise
    logger.info(
        "booking requested booking=%s schedule=%s status=%s",
        booking.pk,
        schedule.pk,
        booking.status,
    )
    return booking


def _overlapping(*, calendar_id: int, start: dt.datetime, end: dt.datetime) -> bool:
    return Booking.objects.filter(
        calendar_id=calendar_id, status__in=ACTIVE_STATUSES, start__lt=end, end__gt=start
    ).exists()


def _booking_times_check(
    *, schedule: Schedule, start: dt.datetime, end: dt.datetime | None
) -> dt.datetime:
    if timezone.is_naive(start) or (end is not None and timezone.is_naive(end)):
        raise BookingRequestInvalid("start", "Times must carry a time zone offset.")
    slot = dt.timedelta(minutes=schedule.slot_minutes)
    end = end if end is not None else start + slot
    now = timezone.now()
    if end <= start:
        raise BookingRequestInvalid("end", "The end must be after the start.")
    if end - start > slot:
        raise BookingRequestInvalid(
            "end", f"A booking on this schedule lasts at most {schedule.slot_minutes} minutes."
        )
    if start <= now:
        raise BookingRequestInvalid("start", "The slot must be in the future.")
    if start > now + dt.timedelta(days=settings.BOOKING_MAX_DAYS_AHEAD):
        raise BookingRequestInvalid(
            "start",
            f"The slot must be within {settings.BOOKING_MAX_DAYS_AHEAD} days from now.",
        )
    return end


def _google_slot_check(*, calendar: Calendar, start: dt.datetime, end: dt.datetime) -> None:
    """Refuse the slot when Google's freebusy shows busy time in it."""
    account = calendar.google_account
    if account is None or account.revoked:
        raise ScheduleUnavailable("calendar_disconnected")
    try:
        client = hooks.google_client(account)
        result = client.freebusy(calendar_ids=[calendar.remote_id], time_min=start, time_max=end)
    except google.AuthRevoked as exc:
        hooks.google_grant_revoked(account_id=account.pk)
        raise ScheduleUnavailable("calendar_disconnected") from exc
    except TransientProviderError as exc:
        raise ScheduleUnavailable("google_unavailable", retry_after_seconds=30) from exc
    except google.GoogleError as exc:
        logger.warning("google freebusy refused calendar=%s reason=%s", calendar.pk, exc.reason)
        raise ScheduleUnavailable("google_refused") from exc
    if calendar.remote_id in result.errors:
        raise ScheduleUnavailable("google_calendar_unreadable")
    busy = result.busy.get(calendar.remote_id, ())
    if any(interval.start < end and interval.end > start for interval in busy):
        raise SlotUnavailable("busy")
