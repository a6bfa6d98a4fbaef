"""Writes on the shared schema: the booking state machine, bookings, schedules, secret rotation.

Every change of a booking's status goes through :func:`booking_transition`, whoever asks for
it (API, email link, Google push, CalDAV reply, admin): it locks the row, refuses illegal
moves, records a :class:`~calendars.models.BookingTransition`, and is idempotent — asking for
the status the booking already has changes nothing and records nothing.

The booking services (DESIGN.md 1.3) build on it: :func:`booking_request` (a bookee asks for
a slot), :func:`booking_confirm`, :func:`booking_deny` and :func:`booking_cancel`. Each one
that changes a booking schedules, after the commit, the provider sync that makes the calendar
(Google or CalDAV) reflect the new status (:mod:`calendars.booking_sync`, run by a Celery
task), so applying a transition twice calls the provider once.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from calendars.models import (
    Booking,
    BookingStatus,
    BookingTransition,
    Calendar,
    GoogleAccount,
    Provider,
    Schedule,
    SyncState,
    TransitionSource,
)

logger = logging.getLogger(__name__)

ROTATION_BATCH_SIZE = 200

# Which statuses a booking may move to from each status (DESIGN.md 1.3).
ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    BookingStatus.REQUESTED: frozenset(
        {BookingStatus.BOOKED, BookingStatus.DECLINED, BookingStatus.CANCELLED}
    ),
    BookingStatus.BOOKED: frozenset({BookingStatus.DECLINED, BookingStatus.CANCELLED}),
    BookingStatus.DECLINED: frozenset(),
    BookingStatus.CANCELLED: frozenset(),
}

PARTSTAT_DECLINED = "DECLINED"
KNOWN_PARTSTATS = frozenset({"NEEDS-ACTION", "ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED"})


class BookingTransitionError(Exception):
    """The booking cannot move from its current status to the one asked for."""

    def __init__(self, *, booking_id: int, from_status: str, to_status: str) -> None:
        super().__init__(f"booking {booking_id} cannot go from {from_status} to {to_status}")
        self.booking_id = booking_id
        self.from_status = from_status
        self.to_status = to_status


@dataclass(frozen=True)
class TransitionResult:
    booking: Booking
    changed: bool
    from_status: str


def booking_transition(
    *,
    booking_id: int,
    to_status: BookingStatus | str,
    source: TransitionSource | str,
    detail: dict[str, Any] | None = None,
) -> TransitionResult:
    """Move a booking to ``to_status`` under a row lock and record the transition.

    Idempotent: when the booking already has ``to_status`` nothing is written and
    ``changed`` is false. Raises :class:`BookingTransitionError` for a move that
    :data:`ALLOWED_TRANSITIONS` does not permit, and ``Booking.DoesNotExist``.
    """
    to_status = BookingStatus(to_status)
    source = TransitionSource(source)
    with transaction.atomic():
        booking = Booking.objects.select_for_update().get(pk=booking_id)
        from_status = booking.status
        if from_status == to_status:
            return TransitionResult(booking=booking, changed=False, from_status=from_status)
        if to_status not in ALLOWED_TRANSITIONS[from_status]:
            raise BookingTransitionError(
                booking_id=booking_id, from_status=from_status, to_status=to_status
            )
        booking.status = to_status
        booking.save(update_fields=["status", "updated_at"])
        BookingTransition.objects.create(
            booking=booking,
            from_status=from_status,
            to_status=to_status,
            source=source,
            detail=detail or {},
        )
    logger.info(
        "booking transition booking=%s from=%s to=%s source=%s",
        booking_id,
        from_status,
        to_status,
        source,
    )
    return TransitionResult(booking=booking, changed=True, from_status=from_status)


def booking_attendee_answer_record(
    *,
    booking_id: int,
    attendee_email: str,
    partstat: str,
    source: TransitionSource | str,
) -> bool:
    """Apply the bookee's answer to their invitation (a PARTSTAT) to the booking.

    DECLINED declines the booking through :func:`booking_deny` (so the provider's event goes
    too); any other answer (ACCEPTED, TENTATIVE, ...) is recorded on
    the booking and as a transition without a change of status — the subscriber still
    decides. An answer from someone other than the booking's attendee, or the same answer
    again, changes nothing. Returns whether anything was recorded.
    """
    partstat = partstat.strip().upper()
    if partstat not in KNOWN_PARTSTATS:
        raise ValueError(f"unknown PARTSTAT {partstat!r}")
    source = TransitionSource(source)
    with transaction.atomic():
        booking = Booking.objects.select_for_update().get(pk=booking_id)
        if booking.attendee_email.strip().lower() != attendee_email.strip().lower():
            logger.info("booking answer ignored booking=%s reason=not-the-attendee", booking_id)
            return False
        if booking.attendee_partstat == partstat:
            return False
        booking.attendee_partstat = partstat
        booking.save(update_fields=["attendee_partstat", "updated_at"])
        if partstat == PARTSTAT_DECLINED and ALLOWED_TRANSITIONS[booking.status]:
            # Declining also removes the event at the provider, like any other decline.
            booking_deny(booking_id=booking_id, source=source, detail={"partstat": partstat})
        else:
            BookingTransition.objects.create(
                booking=booking,
                from_status=booking.status,
                to_status=booking.status,
                source=source,
                detail={"partstat": partstat},
            )
    return True


def encrypted_fields_rotate(*, batch_size: int = ROTATION_BATCH_SIZE) -> int:
    """Re-encrypt every stored secret with the first key of ``FIELD_ENCRYPTION_KEY``.

    Put the new key first, keep the old ones after it, run this, then drop the old keys.
    Each batch is decrypted with whichever key matches and written back encrypted with the
    primary key, in two queries per batch. Returns the number of rows rewritten.
    """
    rewritten = 0
    last_pk = 0
    while True:
        with transaction.atomic():
            batch = list(
                GoogleAccount.objects.select_for_update()
                .filter(pk__gt=last_pk, credentials__isnull=False)
                .only("pk", "credentials")
                .order_by("pk")[:batch_size]
            )
            if not batch:
                break
            GoogleAccount.objects.bulk_update(batch, ["credentials"])
        rewritten += len(batch)
        last_pk = batch[-1].pk
    logger.info("encrypted fields rotated rows=%d", rewritten)
    return rewritten


# --- Bookings (DESIGN.md 1.3) ------------------------------------------------------------------

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
    at once. After the commit the provider sync and the subscriber's email are scheduled.

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

    from calendars.providers.google import event_id_new

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
                google_event_id=event_id_new() if calendar.provider == Provider.GOOGLE else None,
                sync_state=SyncState.PENDING,
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
            _after_commit_sync(booking_id=booking.pk)
            kind = "auto_confirmed" if schedule.auto_confirm else "request"
            _after_commit_subscriber_email(booking_id=booking.pk, kind=kind)
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
    from calendars.providers import TransientProviderError, google

    account = calendar.google_account
    if account is None or account.revoked:
        raise ScheduleUnavailable("calendar_disconnected")
    try:
        client = google.GoogleCalendarClient.for_account(account)
        result = client.freebusy(calendar_ids=[calendar.remote_id], time_min=start, time_max=end)
    except google.AuthRevoked as exc:
        from calendars.google_oauth import google_account_revoked_record

        google_account_revoked_record(account_id=account.pk)
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


def booking_confirm(
    *,
    booking_id: int,
    source: TransitionSource | str,
    detail: dict[str, Any] | None = None,
) -> TransitionResult:
    """The subscriber confirms: requested -> booked; the calendar event is confirmed."""
    return _booking_move(
        booking_id=booking_id, to_status=BookingStatus.BOOKED, source=source, detail=detail
    )


def booking_deny(
    *,
    booking_id: int,
    source: TransitionSource | str,
    detail: dict[str, Any] | None = None,
) -> TransitionResult:
    """The subscriber (or the bookee, from Google) declines: -> declined; the event goes."""
    return _booking_move(
        booking_id=booking_id, to_status=BookingStatus.DECLINED, source=source, detail=detail
    )


def booking_cancel(
    *,
    booking_id: int,
    source: TransitionSource | str,
    detail: dict[str, Any] | None = None,
) -> TransitionResult:
    """The booking is called off (or its event was deleted in Google): -> cancelled."""
    return _booking_move(
        booking_id=booking_id, to_status=BookingStatus.CANCELLED, source=source, detail=detail
    )


def _booking_move(
    *,
    booking_id: int,
    to_status: BookingStatus,
    source: TransitionSource | str,
    detail: dict[str, Any] | None,
) -> TransitionResult:
    with transaction.atomic():
        result = booking_transition(
            booking_id=booking_id, to_status=to_status, source=source, detail=detail
        )
        if result.changed:
            Booking.objects.filter(pk=booking_id).update(
                sync_state=SyncState.PENDING, sync_error=""
            )
            result.booking.sync_state = SyncState.PENDING
            result.booking.sync_error = ""
            _after_commit_sync(booking_id=booking_id)
    return result


def booking_provider_sync_enqueue(*, booking_id: int) -> None:
    """Schedule, after the current transaction commits, the provider sync of a booking.

    Call it after changing a booking's status with :func:`booking_transition` directly (the
    services above do it themselves); the sync is idempotent, so an extra call costs at most
    one read.
    """
    _after_commit_sync(booking_id=booking_id)


def booking_sync_retry(*, booking_ids: list[int]) -> int:
    """Operators: run the provider sync again for bookings not synced (failed or stuck).

    Returns how many were scheduled. Used by the admin action; safe to repeat.
    """
    with transaction.atomic():
        ids = list(
            Booking.objects.filter(pk__in=booking_ids)
            .exclude(sync_state=SyncState.SYNCED)
            .values_list("pk", flat=True)
        )
        Booking.objects.filter(pk__in=ids).update(sync_state=SyncState.PENDING, sync_error="")
        for booking_id in ids:
            _after_commit_sync(booking_id=booking_id)
    logger.info("booking sync retry scheduled count=%d", len(ids))
    return len(ids)


def booking_resync(
    *,
    booking_id: int,
    source: TransitionSource | str,
    detail: dict[str, Any] | None = None,
) -> Booking:
    """Operators: run the provider sync of one booking again now, whatever its sync state.

    Records the request as a transition without a change of status (``detail`` gets
    ``action: resync``) and schedules the same idempotent provider sync as every booking
    change, after the commit. Raises ``Booking.DoesNotExist``.
    """
    with transaction.atomic():
        booking = Booking.objects.select_for_update().get(pk=booking_id)
        BookingTransition.objects.create(
            booking=booking,
            from_status=booking.status,
            to_status=booking.status,
            source=TransitionSource(source),
            detail={**(detail or {}), "action": "resync", "sync_state": booking.sync_state},
        )
        booking.sync_state = SyncState.PENDING
        booking.sync_error = ""
        booking.save(update_fields=["sync_state", "sync_error", "updated_at"])
        _after_commit_sync(booking_id=booking_id)
    logger.info("booking resync requested booking=%s source=%s", booking_id, source)
    return booking


def _after_commit_sync(*, booking_id: int) -> None:
    from calendars.tasks import booking_provider_sync_task

    transaction.on_commit(lambda: booking_provider_sync_task.delay(booking_id))


def _after_commit_subscriber_email(*, booking_id: int, kind: str) -> None:
    from calendars.tasks import booking_subscriber_email_task

    transaction.on_commit(lambda: booking_subscriber_email_task.delay(booking_id, kind))


# --- Schedules ---------------------------------------------------------------------------------

SCHEDULE_FIELDS = frozenset({"title", "auto_confirm", "slot_minutes", "active", "calendar_id"})


class ScheduleUpdateInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def schedule_update(*, schedule_id: int, changes: dict[str, Any]) -> Schedule:
    """Change a schedule. A new calendar must be the owner's and connected.

    When the schedule's calendar changes (DESIGN.md 1.4), the new Google calendar gets a watch
    channel and the old one loses it unless another schedule still uses it; both through
    :mod:`gcal_push.services`, after the commit.
    """
    unknown = set(changes) - SCHEDULE_FIELDS
    if unknown:
        raise ScheduleUpdateInvalid(sorted(unknown)[0], "This field cannot be changed.")
    with transaction.atomic():
        schedule = Schedule.objects.select_for_update().get(pk=schedule_id)
        old_calendar_id = schedule.calendar_id
        if "calendar_id" in changes and changes["calendar_id"] != old_calendar_id:
            calendar = Calendar.objects.filter(
                pk=changes["calendar_id"], owner_id=schedule.owner_id
            ).first()
            if calendar is None:
                raise ScheduleUpdateInvalid("calendar", "Unknown calendar.")
            if not calendar.connected:
                raise ScheduleUpdateInvalid("calendar", "This calendar is disconnected.")
        if "slot_minutes" in changes and not 5 <= int(changes["slot_minutes"]) <= 24 * 60:
            raise ScheduleUpdateInvalid("slot_minutes", "Between 5 and 1440 minutes.")
        for name, value in changes.items():
            setattr(schedule, name, value)
        schedule.save(update_fields=[*changes, "updated_at"])
        if schedule.calendar_id != old_calendar_id:
            _after_commit_watch_change(
                old_calendar_id=old_calendar_id, new_calendar_id=schedule.calendar_id
            )
    return schedule


def _after_commit_watch_change(*, old_calendar_id: int, new_calendar_id: int) -> None:
    def apply() -> None:
        from gcal_push.services import calendar_watch_start, calendar_watch_stop

        calendars = Calendar.objects.in_bulk([old_calendar_id, new_calendar_id])
        new = calendars.get(new_calendar_id)
        old = calendars.get(old_calendar_id)
        if new is not None and new.provider == Provider.GOOGLE and new.connected:
            calendar_watch_start(calendar_id=new.pk)
        still_used = Schedule.objects.filter(calendar_id=old_calendar_id).exists()
        if old is not None and old.provider == Provider.GOOGLE and not still_used:
            calendar_watch_stop(calendar_id=old.pk)

    transaction.on_commit(apply)
