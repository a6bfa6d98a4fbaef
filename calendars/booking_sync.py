"""Make a booking's calendar reflect its status: the provider side of DESIGN.md 1.3.

:func:`booking_provider_sync` is what the Celery task runs after every booking change. It
compares ``Booking.status`` with ``Booking.provider_status`` (what the provider last
reflected) and does the one step that closes the gap, by calendar kind:

- Google calendar, ``GOOGLE_INVITE_ENABLED``: a new booking is ``events.insert``
  (tentative, or confirmed when auto-confirmed) with ``sendUpdates=all``, so Google emails the
  bookee; confirming is ``events.patch`` to confirmed, declining or cancelling is
  ``events.delete``, both with ``sendUpdates=all``.
- Google calendar, flag off: ``events.import`` (Google sends nothing) plus Convoke's own
  REQUEST email; confirming patches the status and sends a REQUEST with SEQUENCE+1;
  declining or cancelling deletes the event and sends a CANCEL.
- CalDAV calendar: the event with ORGANIZER and ATTENDEE is PUT to the organizer's
  collection; confirming PUTs it again with SEQUENCE+1 and STATUS:CONFIRMED; declining or
  cancelling DELETEs it.

On CalDAV, the server emits the iTIP messages when ``CALDAV_SERVER_SCHEDULES``; otherwise
Convoke sends them as on Google with the flag off.

Idempotence: the Google event id is chosen and stored when the booking is created, so a
retried insert gets 409 and the existing event is fetched and compared; a delete answered 404
or 410 is done; ``provider_status`` is written after each successful step, so a repeated task
finds nothing to do. A lease on the booking (``sync_lease_until``, taken with a conditional
``UPDATE``) lets one sync at a time call the provider, outside any transaction (on SQLite a
transaction would hold the whole database's write lock during the HTTP call).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from calendars.models import Booking, BookingStatus, Provider, SyncState
from calendars.providers import ProviderError

logger = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)
MAX_ROUNDS = 4  # the status may change while a step runs; follow it a few times
ACTIVE = frozenset({BookingStatus.REQUESTED, BookingStatus.BOOKED})
SYNC_ERROR_MAX = 500


class SyncOutcome(enum.StrEnum):
    SYNCED = "synced"
    UNCHANGED = "unchanged"  # the provider already reflected the status
    BUSY = "busy"  # another sync holds the lease; try again later


class CalendarMode(enum.StrEnum):
    GOOGLE_INVITE = "google_invite"
    GOOGLE_IMPORT = "google_import"
    CALDAV = "caldav"


class BookingSyncFailed(ProviderError):
    """A step that retrying cannot fix (event deleted meanwhile, wrong calendar, refused)."""

    reason = "sync_failed"


@dataclasses.dataclass(frozen=True)
class OwnInvitation:
    """An iTIP message Convoke sends the bookee itself (when no provider does)."""

    method: str  # "REQUEST" or "CANCEL"
    sequence: int


@dataclasses.dataclass(frozen=True)
class StepResult:
    provider_status: str
    sequence: int
    google_event_id: str | None
    invitations: tuple[OwnInvitation, ...] = ()


def calendar_mode(*, provider: str) -> CalendarMode:
    if provider == Provider.GOOGLE:
        return (
            CalendarMode.GOOGLE_INVITE
            if settings.GOOGLE_INVITE_ENABLED
            else CalendarMode.GOOGLE_IMPORT
        )
    return CalendarMode.CALDAV


def booking_provider_sync(*, booking_id: int) -> SyncOutcome:
    """Bring the booking's calendar in line with its status. See the module docstring.

    Raises :class:`~calendars.providers.TransientProviderError` (retry later),
    :class:`BookingSyncFailed` or another :class:`~calendars.providers.ProviderError`
    (record the failure), ``Booking.DoesNotExist``.
    """
    if not _lease_take(booking_id=booking_id):
        return SyncOutcome.BUSY
    outcome = SyncOutcome.UNCHANGED
    try:
        for _ in range(MAX_ROUNDS):
            booking = Booking.objects.select_related(
                "calendar", "calendar__google_account", "organizer"
            ).get(pk=booking_id)
            if booking.provider_status == booking.status:
                _synced_mark(booking_id=booking_id, status=booking.status)
                return outcome
            step = _step(booking)
            _step_record(booking=booking, step=step)
            outcome = SyncOutcome.SYNCED
        return outcome
    finally:
        Booking.objects.filter(pk=booking_id).update(sync_lease_until=None)


def booking_sync_failed_record(*, booking_id: int, reason: str) -> None:
    """The sync gave up: operators see ``sync_state=failed`` and the reason (admin, API)."""
    Booking.objects.filter(pk=booking_id).update(
        sync_state=SyncState.FAILED, sync_error=reason[:SYNC_ERROR_MAX]
    )
    logger.warning("booking sync failed booking=%s reason=%s", booking_id, reason)


def booking_sync_retry_record(*, booking_id: int, reason: str) -> None:
    """A transient failure: still pending, with the latest reason for operators to see."""
    Booking.objects.filter(pk=booking_id).exclude(sync_state=SyncState.SYNCED).update(
        sync_error=f"retrying: {reason}"[:SYNC_ERROR_MAX]
    )


# --- Lease ---------------------------------------------------------------------------------


def _lease_take(*, booking_id: int) -> bool:
    now = timezone.now()
    return bool(
        Booking.objects.filter(pk=booking_id)
        .filter(Q(sync_lease_until__isnull=True) | Q(sync_lease_until__lt=now))
        .update(sync_lease_until=now + LEASE)
    )


def _synced_mark(*, booking_id: int, status: str) -> None:
    Booking.objects.filter(pk=booking_id, status=status, provider_status=status).exclude(
        sync_state=SyncState.SYNCED, sync_error=""
    ).update(sync_state=SyncState.SYNCED, sync_error="")


def _step_record(*, booking: Booking, step: StepResult) -> None:
    with transaction.atomic():
        Booking.objects.filter(pk=booking.pk).update(
            provider_status=step.provider_status,
            sequence=step.sequence,
            google_event_id=step.google_event_id,
        )
        _synced_mark(booking_id=booking.pk, status=step.provider_status)
        for invitation in step.invitations:
            _after_commit_invitation(booking_id=booking.pk, invitation=invitation)
    logger.info(
        "booking synced booking=%s provider_status=%s mode=%s",
        booking.pk,
        step.provider_status,
        calendar_mode(provider=booking.calendar.provider),
    )


def _after_commit_invitation(*, booking_id: int, invitation: OwnInvitation) -> None:
    from calendars.tasks import booking_invitation_email_task

    transaction.on_commit(
        lambda: booking_invitation_email_task.delay(
            booking_id, invitation.method, invitation.sequence
        )
    )


# --- Steps ---------------------------------------------------------------------------------


def _step(booking: Booking) -> StepResult:
    mode = calendar_mode(provider=booking.calendar.provider)
    if mode is CalendarMode.CALDAV:
        return _caldav_step(booking)
    return _google_step(booking, invite=mode is CalendarMode.GOOGLE_INVITE)


def _google_event_status(status: str) -> str:
    return "confirmed" if status == BookingStatus.BOOKED else "tentative"


def google_event_body(booking: Booking) -> dict[str, Any]:
    """The Calendar API event for a booking (API reference: v3/reference/events)."""
    return {
        "id": booking.google_event_id,
        "summary": booking.title,
        "description": booking.description,
        "start": {"dateTime": booking.start.isoformat(), "timeZone": booking.time_zone},
        "end": {"dateTime": booking.end.isoformat(), "timeZone": booking.time_zone},
        "status": _google_event_status(booking.status),
        "attendees": [{"email": booking.attendee_email, "displayName": booking.attendee_name}],
        "guestsCanInviteOthers": False,
        "guestsCanModify": False,
        "extendedProperties": {
            "private": {"convokeBookingId": str(booking.pk), "convokeUid": booking.ical_uid}
        },
    }


def _google_step(booking: Booking, *, invite: bool) -> StepResult:
    from calendars.providers import google

    account = booking.calendar.google_account
    if account is None:
        raise BookingSyncFailed("the Google calendar has no connected account")
    client = google.GoogleCalendarClient.for_account(account)
    calendar_id = booking.calendar.remote_id
    event_id = booking.google_event_id
    if not event_id:
        raise BookingSyncFailed("the booking has no Google event id")
    send = google.SendUpdates.ALL if invite else google.SendUpdates.NONE
    target, done = booking.status, booking.provider_status
    sequence = booking.sequence
    invitations: list[OwnInvitation] = []

    if target in ACTIVE and not done:
        body = google_event_body(booking)
        if invite:
            try:
                event = client.event_insert(calendar_id=calendar_id, event=body, send_updates=send)
            except google.Duplicate:
                # A retry after a lost answer: the event is there; make sure it is ours.
                event = client.event_get(calendar_id=calendar_id, event_id=event_id)
                if event.private_properties.get("convokeBookingId") != str(booking.pk):
                    raise BookingSyncFailed(
                        "the Google event id is taken by another event"
                    ) from None
                if event.is_cancelled:
                    raise BookingSyncFailed("the event was deleted in Google") from None
                if event.status != body["status"]:
                    client.event_patch(
                        calendar_id=calendar_id,
                        event_id=event_id,
                        changes={"status": body["status"]},
                        send_updates=send,
                    )
        else:
            event = client.event_import(
                calendar_id=calendar_id, event={**body, "iCalUID": booking.ical_uid}
            )
            event_id = event.id or event_id
            invitations.append(OwnInvitation(method="REQUEST", sequence=sequence))
        return StepResult(target, sequence, event_id, tuple(invitations))

    if target == BookingStatus.BOOKED and done == BookingStatus.REQUESTED:
        try:
            client.event_patch(
                calendar_id=calendar_id,
                event_id=event_id,
                changes={"status": "confirmed"},
                send_updates=send,
            )
        except (google.NotFound, google.Gone) as exc:
            raise BookingSyncFailed("the event was deleted in Google") from exc
        if not invite:
            sequence += 1
            invitations.append(OwnInvitation(method="REQUEST", sequence=sequence))
        return StepResult(target, sequence, event_id, tuple(invitations))

    # Declined or cancelled. Delete even when nothing was recorded as written: an insert
    # whose answer was lost may have created the event.
    with contextlib.suppress(google.NotFound, google.Gone):  # gone already: done
        client.event_delete(calendar_id=calendar_id, event_id=event_id, send_updates=send)
    if not invite and done:
        sequence += 1
        invitations.append(OwnInvitation(method="CANCEL", sequence=sequence))
    return StepResult(target, sequence, event_id, tuple(invitations))


def _caldav_step(booking: Booking) -> StepResult:
    from calendars.ical import booking_event_build
    from calendars.providers import caldav

    own = not settings.CALDAV_SERVER_SCHEDULES
    target, done = booking.status, booking.provider_status
    sequence = booking.sequence
    invitations: list[OwnInvitation] = []
    calendar_url = booking.calendar.remote_id
    organizer = booking.organizer.email

    if target in ACTIVE:
        if done:
            sequence += 1  # a significant change: attendees must see a new revision
        body = booking_event_build(
            uid=booking.ical_uid,
            sequence=sequence,
            status="CONFIRMED" if target == BookingStatus.BOOKED else "TENTATIVE",
            summary=booking.title,
            description=booking.description,
            start=booking.start,
            end=booking.end,
            time_zone=booking.time_zone,
            organizer_address=organizer,
            organizer_name=booking.organizer.full_name,
            attendee_address=booking.attendee_email,
            attendee_name=booking.attendee_name,
            attendee_partstat=booking.attendee_partstat or "NEEDS-ACTION",
        )
        caldav.event_put(
            calendar_url=calendar_url, user_email=organizer, uid=booking.ical_uid, body=body
        )
        if own:
            invitations.append(OwnInvitation(method="REQUEST", sequence=sequence))
        return StepResult(target, sequence, booking.google_event_id, tuple(invitations))

    caldav.event_delete(calendar_url=calendar_url, user_email=organizer, uid=booking.ical_uid)
    if own and done:
        sequence += 1
        invitations.append(OwnInvitation(method="CANCEL", sequence=sequence))
    return StepResult(target, sequence, booking.google_event_id, tuple(invitations))
