"""The steps of a booking's publish, by kind of calendar (see :mod:`calendars.services.publish`).

Each step reads the booking (its status, and ``provider_status``: what the provider last
reflected), makes the one provider call that closes the gap, and says what to record:
the new ``provider_status``, SEQUENCE and Google event id, and the iTIP messages Convoke
must send the bookee itself when no provider does. It writes nothing to the database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
from typing import Any

from django.conf import settings

from calendars import hooks
from calendars.ical import EventStatus, Method, PartStat, booking_event_build
from calendars.models import Booking, BookingStatus, Provider
from calendars.providers import ProviderError, caldav, google

ACTIVE = frozenset({BookingStatus.REQUESTED, BookingStatus.BOOKED})


class CalendarMode(enum.StrEnum):
    GOOGLE_INVITE = "google_invite"
    GOOGLE_IMPORT = "google_import"
    CALDAV = "caldav"


class BookingPublishFailed(ProviderError):
    """A step that retrying cannot fix (event deleted meanwhile, wrong calendar, refused)."""

    reason = "publish_failed"


@dataclasses.dataclass(frozen=True)
class OwnInvitation:
    """An iTIP message Convoke sends the bookee itself (when no provider does)."""

    method: Method  # REQUEST or CANCEL
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


def booking_event_body(
    booking: Booking,
    *,
    sequence: int | None = None,
    status: EventStatus | None = None,
    method: Method | None = None,
) -> bytes:
    """The booking's calendar object (RFC 5545), or with ``method`` its iTIP message (RFC
    5546): what is PUT to a CalDAV calendar, sent to the bookee, or shown on the RSVP page.

    ``status`` defaults to the booking's: TENTATIVE while requested, CONFIRMED when booked,
    CANCELLED otherwise. Needs ``booking.organizer`` (select it with the booking).
    """
    if status is None:
        status = BOOKING_EVENT_STATUS.get(BookingStatus(booking.status), EventStatus.CANCELLED)
    return booking_event_build(
        uid=booking.ical_uid,
        sequence=booking.sequence if sequence is None else sequence,
        status=status,
        summary=booking.title,
        description=booking.description,
        start=booking.start,
        end=booking.end,
        time_zone=booking.time_zone,
        organizer_address=booking.organizer.email,
        organizer_name=booking.organizer.full_name,
        attendee_address=booking.attendee_email,
        attendee_name=booking.attendee_name,
        attendee_partstat=booking.attendee_partstat or PartStat.NEEDS_ACTION,
        method=method,
    )


BOOKING_EVENT_STATUS = {
    BookingStatus.REQUESTED: EventStatus.TENTATIVE,
    BookingStatus.BOOKED: EventStatus.CONFIRMED,
}


def publish_step(booking: Booking) -> StepResult:
    mode = calendar_mode(provider=booking.calendar.provider)
    if mode is CalendarMode.CALDAV:
        return _caldav_step(booking)
    return _google_step(booking, invite=mode is CalendarMode.GOOGLE_INVITE)


def _google_event_status(status: str) -> str:
    return (
        google.EventStatus.CONFIRMED
        if status == BookingStatus.BOOKED
        else google.EventStatus.TENTATIVE
    )


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
    account = booking.calendar.google_account
    if account is None:
        raise BookingPublishFailed("the Google calendar has no connected account")
    client = hooks.google_client(account)
    calendar_id = booking.calendar.remote_id
    event_id = booking.google_event_id
    if not event_id:
        raise BookingPublishFailed("the booking has no Google event id")
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
                    raise BookingPublishFailed(
                        "the Google event id is taken by another event"
                    ) from None
                if event.is_cancelled:
                    raise BookingPublishFailed("the event was deleted in Google") from None
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
            invitations.append(OwnInvitation(method=Method.REQUEST, sequence=sequence))
        return StepResult(target, sequence, event_id, tuple(invitations))

    if target == BookingStatus.BOOKED and done == BookingStatus.REQUESTED:
        try:
            client.event_patch(
                calendar_id=calendar_id,
                event_id=event_id,
                changes={"status": google.EventStatus.CONFIRMED.value},
                send_updates=send,
            )
        except (google.NotFound, google.Gone) as exc:
            raise BookingPublishFailed("the event was deleted in Google") from exc
        if not invite:
            sequence += 1
            invitations.append(OwnInvitation(method=Method.REQUEST, sequence=sequence))
        return StepResult(target, sequence, event_id, tuple(invitations))

    # Declined or cancelled. Delete even when nothing was recorded as written: an insert
    # whose answer was lost may have created the event.
    with contextlib.suppress(google.NotFound, google.Gone):  # gone already: done
        client.event_delete(calendar_id=calendar_id, event_id=event_id, send_updates=send)
    if not invite and done:
        sequence += 1
        invitations.append(OwnInvitation(method=Method.CANCEL, sequence=sequence))
    return StepResult(target, sequence, event_id, tuple(invitations))


def _caldav_step(booking: Booking) -> StepResult:
    target, done = booking.status, booking.provider_status
    sequence = booking.sequence
    invitations: list[OwnInvitation] = []
    calendar_url = booking.calendar.remote_id
    organizer = booking.organizer.email
    # A server that schedules (RFC 6638) sends the REQUEST and CANCEL of the organizer's
    # writes by itself; for one that does not, Convoke sends its own.
    own = not caldav.server_schedules(user_email=organizer)

    if target in ACTIVE:
        if done:
            sequence += 1  # a significant change: attendees must see a new revision
        body = booking_event_body(booking, sequence=sequence)
        caldav.event_put(
            calendar_url=calendar_url, user_email=organizer, uid=booking.ical_uid, body=body
        )
        if own:
            invitations.append(OwnInvitation(method=Method.REQUEST, sequence=sequence))
        return StepResult(target, sequence, booking.google_event_id, tuple(invitations))

    caldav.event_delete(calendar_url=calendar_url, user_email=organizer, uid=booking.ical_uid)
    if own and done:
        sequence += 1
        invitations.append(OwnInvitation(method=Method.CANCEL, sequence=sequence))
    return StepResult(target, sequence, booking.google_event_id, tuple(invitations))
