"""The steps of a booking's publish, by kind of calendar (see :mod:`calendars.services.publish`).

Each step reads the booking (its status, and ``provider_status``: what the provider last
reflected), makes the one provider call that closes the gap, and says what to record:
the new ``provider_status``, SEQUENCE and Google event id, what Google answered (ETag,
status, ``updated``), and the iTIP messages Convoke must send the bookee itself when no
provider does. It writes nothing to the database.

On Google every patch and delete carries ``If-Match`` with the ETag Convoke last saw. When
Google answers 412 (the event changed since), 410 or 404 (deleted), or the event read back
is cancelled, the step raises :class:`EventChangedInGoogle` with the event as Google has it
now: the publish applies it to the booking first (as the sync would) and decides again. So
a deleted event is never patched — Google would restore it — and an event Google shows
deleted is never deleted again.
"""

from __future__ import annotations

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


class EventChangedInGoogle(Exception):
    """The Google event is not as Convoke last saw it (412, 410, 404, or cancelled): apply
    ``event`` to the booking, then decide again. Nothing was written."""

    def __init__(self, event: google.Event) -> None:
        super().__init__(f"the Google event {event.status} changed since last seen")
        self.event = event


@dataclasses.dataclass(frozen=True)
class StepResult:
    provider_status: str
    sequence: int
    google_event_id: str | None
    invitations: tuple[OwnInvitation, ...] = ()
    # The Google event as the write answered it (None when no write was made).
    event: google.Event | None = None


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
    """The Calendar API event for a booking (API reference: v3/reference/events).

    Needs ``booking.calendar`` and ``booking.organizer``. The attendees are the subscriber
    and the bookee. The subscriber's entry is the calendar's own address (its id): Google
    makes the calendar an event is inserted in its organizer and marks that entry
    ``organizer`` and ``self`` (both read-only, derived from the address;
    docs/google-calendar.md), so the subscriber can accept or decline in Google, which the
    sync maps to confirm or deny. Its answer is ``needsAction`` while the booking waits for
    the subscriber, ``accepted`` once booked.
    """
    booked = booking.status == BookingStatus.BOOKED
    subscriber = {
        "email": booking.calendar.remote_id,
        "displayName": booking.organizer.full_name or booking.calendar.display_name,
        "organizer": True,
        "responseStatus": (
            google.ResponseStatus.ACCEPTED if booked else google.ResponseStatus.NEEDS_ACTION
        ).value,
    }
    return {
        "id": booking.google_event_id,
        "summary": booking.title,
        "description": booking.description,
        "start": {"dateTime": booking.start.isoformat(), "timeZone": booking.time_zone},
        "end": {"dateTime": booking.end.isoformat(), "timeZone": booking.time_zone},
        "status": _google_event_status(booking.status),
        "attendees": [
            subscriber,
            {"email": booking.attendee_email, "displayName": booking.attendee_name},
        ],
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
    gone = booking.google_event_status == google.EventStatus.CANCELLED

    if target in ACTIVE and gone:
        # Google showed the event deleted, and the booking still active: never write to a
        # deleted event (Google would restore it). Read it again and let the booking follow.
        raise EventChangedInGoogle(_event_read(client, calendar_id, event_id))

    if target in ACTIVE and not done:
        body = google_event_body(booking)
        if invite:
            try:
                event = client.event_insert(calendar_id=calendar_id, event=body, send_updates=send)
            except google.Duplicate:
                # A retry after a lost answer: the event is there; make sure it is ours.
                event = _event_read(client, calendar_id, event_id)
                if event.private_properties.get("convokeBookingId") != str(booking.pk):
                    raise BookingPublishFailed(
                        "the Google event id is taken by another event"
                    ) from None
                if event.is_cancelled:
                    raise EventChangedInGoogle(event) from None
                if event.status != body["status"]:
                    event = _event_patch(
                        client,
                        calendar_id,
                        event_id,
                        {"status": body["status"]},
                        send=send,
                        etag=event.etag,
                    )
        else:
            event = client.event_import(
                calendar_id=calendar_id, event={**body, "iCalUID": booking.ical_uid}
            )
            event_id = event.id or event_id
            invitations.append(OwnInvitation(method=Method.REQUEST, sequence=sequence))
        return StepResult(target, sequence, event_id, tuple(invitations), event)

    if target == BookingStatus.BOOKED and done == BookingStatus.REQUESTED:
        etag = booking.google_etag
        if not etag:  # written before ETags were kept: read it first, never patch blind
            current = _event_read(client, calendar_id, event_id)
            if current.is_cancelled:
                raise EventChangedInGoogle(current)
            etag = current.etag
        event = _event_patch(
            client,
            calendar_id,
            event_id,
            {"status": google.EventStatus.CONFIRMED.value},
            send=send,
            etag=etag,
        )
        if not invite:
            sequence += 1
            invitations.append(OwnInvitation(method=Method.REQUEST, sequence=sequence))
        return StepResult(target, sequence, event_id, tuple(invitations), event)

    # Declined or cancelled. Delete even when nothing was recorded as written (an insert
    # whose answer was lost may have created the event), but never an event Google showed
    # deleted: that call would change nothing.
    if not gone:
        try:
            client.event_delete(
                calendar_id=calendar_id,
                event_id=event_id,
                send_updates=send,
                etag=booking.google_etag or None,
            )
        except google.PreconditionFailed as exc:
            raise EventChangedInGoogle(_event_read(client, calendar_id, event_id)) from exc
        except (google.NotFound, google.Gone) as exc:
            if done:  # deleted in Google meanwhile: record it, and decide again
                raise EventChangedInGoogle(_deleted(event_id)) from exc
    if not invite and done:
        sequence += 1
        invitations.append(OwnInvitation(method=Method.CANCEL, sequence=sequence))
    return StepResult(target, sequence, event_id, tuple(invitations))


def _deleted(event_id: str) -> google.Event:
    """What Google's 410 on a delete says: the event is deleted (its time is unknown)."""
    return google.Event(id=event_id, status=google.EventStatus.CANCELLED)


def _event_read(
    client: google.GoogleCalendarClient, calendar_id: str, event_id: str
) -> google.Event:
    try:
        return client.event_get(calendar_id=calendar_id, event_id=event_id)
    except google.NotFound as exc:
        raise BookingPublishFailed("the Google event is gone (404)") from exc


def _event_patch(
    client: google.GoogleCalendarClient,
    calendar_id: str,
    event_id: str,
    changes: dict[str, Any],
    *,
    send: google.SendUpdates,
    etag: str,
) -> google.Event:
    """``events.patch`` with ``If-Match``: a change made in Google meanwhile, a deletion
    included, is read and applied first (:class:`EventChangedInGoogle`), never overwritten."""
    try:
        event = client.event_patch(
            calendar_id=calendar_id,
            event_id=event_id,
            changes=changes,
            send_updates=send,
            etag=etag,
        )
    except (google.PreconditionFailed, google.Gone, google.NotFound) as exc:
        raise EventChangedInGoogle(_event_read(client, calendar_id, event_id)) from exc
    return event


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
