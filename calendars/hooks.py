"""What the core asks of the apps above it, without importing them (docs/architecture.md).

The core (models, bookings, providers) is the floor of the house: it imports no app above
it. A few things it sets off belong to those apps, so each app registers its function here
when Django starts (``AppConfig.ready``) and the core calls it through this module:

- the outbox (``invitations``) stores a booking's email, in the caller's transaction:
  :func:`booking_email_enqueue`;
- the Google app (``gcal_push``) gives a Calendar API client whose refreshed tokens are
  written back (:func:`google_client`), records that Google revoked a grant
  (:func:`google_grant_revoked`), re-derives the watch channels of calendars whose
  schedules changed (:func:`calendars_watch_changed`), and applies a booking's event as
  Google just showed it, the way its sync does (:func:`google_event_apply`): a publish
  answered 412 or 410, or a decision that reads the event first, re-decides from there.

These are explicit calls with one registered implementation each, not signals: the reader
of the core sees the call, and ``grep`` finds the implementation under the same name in the
app's ``apps.py``. A hook nobody registered raises :class:`HookMissing`: Convoke always runs
all its apps, so a missing one is a bug, never a reason to drop an email silently.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from calendars.models import GoogleAccount
    from calendars.providers.google import Event, GoogleCalendarClient


class HookMissing(RuntimeError):
    """No app registered the hook the core called."""


class BookingEmail(enum.StrEnum):
    """The emails a booking sets off (docs/architecture.md, "bookings")."""

    REQUEST = "booking_request"  # to the subscriber: Confirm / Deny links
    AUTO_CONFIRMED = "booking_auto_confirmed"  # to the subscriber: booked at once
    INVITATION = "booking_invitation"  # to the bookee: iTIP REQUEST or CANCEL


@dataclass(frozen=True)
class BookingEmailRequest:
    """One booking email to store. For :attr:`BookingEmail.INVITATION`, ``body`` is the
    iTIP message (built by :func:`calendars.services.booking_event_body`) with its method
    and SEQUENCE."""

    booking_id: int
    email: BookingEmail
    method: str = ""
    sequence: int = 0
    body: bytes | None = None


class BookingEmailHook(Protocol):
    def __call__(self, request: BookingEmailRequest) -> object: ...


class GoogleClientHook(Protocol):
    def __call__(self, account: GoogleAccount) -> GoogleCalendarClient: ...


class GrantRevokedHook(Protocol):
    def __call__(self, *, account_id: int) -> object: ...


class WatchChangedHook(Protocol):
    def __call__(self, *, calendar_ids: list[int]) -> object: ...


class EventApplyHook(Protocol):
    def __call__(self, *, booking_id: int, event: Event) -> bool: ...


@dataclass
class _Registry:
    booking_email: BookingEmailHook | None = None
    google_client: GoogleClientHook | None = None
    google_grant_revoked: GrantRevokedHook | None = None
    calendars_watch_changed: WatchChangedHook | None = None
    google_event_apply: EventApplyHook | None = None


_registry = _Registry()


def hooks_register(
    *,
    booking_email: BookingEmailHook | None = None,
    google_client: GoogleClientHook | None = None,
    google_grant_revoked: GrantRevokedHook | None = None,
    calendars_watch_changed: WatchChangedHook | None = None,
    google_event_apply: EventApplyHook | None = None,
) -> None:
    """Called by an app's ``AppConfig.ready`` with the functions it implements."""
    if booking_email is not None:
        _registry.booking_email = booking_email
    if google_client is not None:
        _registry.google_client = google_client
    if google_grant_revoked is not None:
        _registry.google_grant_revoked = google_grant_revoked
    if calendars_watch_changed is not None:
        _registry.calendars_watch_changed = calendars_watch_changed
    if google_event_apply is not None:
        _registry.google_event_apply = google_event_apply


def _missing(name: str) -> HookMissing:
    return HookMissing(f"no app registered the {name} hook (is every Convoke app installed?)")


def booking_email_enqueue(request: BookingEmailRequest) -> None:
    """Store a booking's email in the outbox, in the caller's transaction; it is sent after
    the commit, and retried, dead-lettered and shown like every email."""
    if _registry.booking_email is None:
        raise _missing("booking_email")
    _registry.booking_email(request)


def google_client(account: GoogleAccount) -> GoogleCalendarClient:
    """A Calendar API client with ``account``'s credentials; refreshed tokens are stored.

    Raises :class:`~calendars.providers.google.AuthRevoked` when the account has no usable
    grant."""
    if _registry.google_client is None:
        raise _missing("google_client")
    return _registry.google_client(account)


def google_grant_revoked(*, account_id: int) -> None:
    """Google refused the account's grant (``invalid_grant``): record it, once."""
    if _registry.google_grant_revoked is None:
        raise _missing("google_grant_revoked")
    _registry.google_grant_revoked(account_id=account_id)


def calendars_watch_changed(*, calendar_ids: Iterable[int]) -> None:
    """These calendars may have started or stopped being some schedule's calendar: the
    Google app re-derives their watch channels after the commit (never a Google call in the
    caller's transaction)."""
    if _registry.calendars_watch_changed is None:
        raise _missing("calendars_watch_changed")
    ids = sorted(set(calendar_ids))
    if ids:
        _registry.calendars_watch_changed(calendar_ids=ids)


def google_event_apply(*, booking_id: int, event: Event) -> bool:
    """Apply the booking's Google event as Google just returned it (deleted, moved, answered
    in Google), through the same mapping as the sync, in the caller's transaction; an older
    state than the one last seen is ignored. Returns whether the booking changed."""
    if _registry.google_event_apply is None:
        raise _missing("google_event_apply")
    return _registry.google_event_apply(booking_id=booking_id, event=event)
