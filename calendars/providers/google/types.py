"""Google Calendar API v3 vocabularies and results, as plain data.

Reference: https://developers.google.com/workspace/calendar/api/v3/reference (events
resource, channels resource, freeBusy, calendarList).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

SCOPE_EVENTS = "https://www.googleapis.com/auth/calendar.events"
SCOPE_CALENDAR_LIST = "https://www.googleapis.com/auth/calendar.calendarlist.readonly"
SCOPE_FREEBUSY = "https://www.googleapis.com/auth/calendar.freebusy"
SCOPE_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
# openid makes the token endpoint return an id_token naming the account (its "sub").
SCOPES: tuple[str, ...] = ("openid", SCOPE_EMAIL, SCOPE_EVENTS, SCOPE_CALENDAR_LIST, SCOPE_FREEBUSY)
REQUIRED_SCOPES: frozenset[str] = frozenset({SCOPE_EVENTS, SCOPE_CALENDAR_LIST, SCOPE_FREEBUSY})

RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
_BASE32HEX = "0123456789abcdefghijklmnopqrstuv"


class SendUpdates(enum.StrEnum):
    """Who Google emails about a change (``sendUpdates``)."""

    ALL = "all"
    EXTERNAL_ONLY = "externalOnly"
    NONE = "none"


class EventStatus(enum.StrEnum):
    CONFIRMED = "confirmed"
    TENTATIVE = "tentative"
    CANCELLED = "cancelled"


class ResponseStatus(enum.StrEnum):
    """An attendee's answer (``attendees[].responseStatus``)."""

    NEEDS_ACTION = "needsAction"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    TENTATIVE = "tentative"


# --- Results ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Attendee:
    email: str
    response_status: ResponseStatus | str
    is_self: bool = False
    is_organizer: bool = False
    display_name: str = ""


@dataclasses.dataclass(frozen=True)
class Event:
    """An event as Google returned it. A deleted event may carry only ``id`` and ``status``."""

    id: str
    status: EventStatus | str
    etag: str = ""
    ical_uid: str = ""
    summary: str = ""
    description: str = ""
    start: dt.datetime | None = None  # for timed events
    end: dt.datetime | None = None
    start_date: dt.date | None = None  # for all-day events
    end_date: dt.date | None = None
    attendees: tuple[Attendee, ...] = ()
    sequence: int = 0
    updated: dt.datetime | None = None
    recurring_event_id: str | None = None
    private_properties: Mapping[str, str] = dataclasses.field(default_factory=dict)
    raw: Mapping[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def is_cancelled(self) -> bool:
        return self.status == EventStatus.CANCELLED

    def attendee(self, email: str) -> Attendee | None:
        wanted = email.strip().lower()
        return next((a for a in self.attendees if a.email.lower() == wanted), None)


@dataclasses.dataclass(frozen=True)
class EventPage:
    events: tuple[Event, ...]
    next_page_token: str | None
    next_sync_token: str | None


@dataclasses.dataclass(frozen=True)
class Channel:
    id: str
    resource_id: str
    resource_uri: str
    expiration: dt.datetime | None
    token: str | None


@dataclasses.dataclass(frozen=True)
class BusyInterval:
    start: dt.datetime
    end: dt.datetime


@dataclasses.dataclass(frozen=True)
class FreeBusy:
    busy: Mapping[str, tuple[BusyInterval, ...]]
    errors: Mapping[str, str]  # calendar id -> reason, for calendars Google could not read


@dataclasses.dataclass(frozen=True)
class CalendarListEntry:
    id: str
    summary: str
    primary: bool
    access_role: str
    time_zone: str


@dataclasses.dataclass(frozen=True)
class TokenGrant:
    """What the token endpoint answered for an authorization code."""

    access_token: str
    refresh_token: str | None
    expiry: dt.datetime | None  # naive UTC, as google-auth wants it
    scopes: tuple[str, ...]
    subject: str
    email: str


# --- Helpers ----------------------------------------------------------------------------------


def event_id_new() -> str:
    """A client-chosen event id: base32hex (``0-9a-v``), 26 characters, from a random UUID."""
    encoded = base64.b32hexencode(uuid.uuid4().bytes).decode("ascii").rstrip("=").lower()
    assert all(c in _BASE32HEX for c in encoded)
    return encoded


def credentials_document(
    *,
    token: str | None,
    refresh_token: str | None,
    expiry: dt.datetime | None,
    scopes: Iterable[str],
) -> dict[str, Any]:
    """The JSON stored (encrypted) in ``GoogleAccount.credentials``."""
    return {
        "token": token,
        "refresh_token": refresh_token,
        "expiry": expiry.replace(tzinfo=None).isoformat() if expiry else None,
        "scopes": sorted(set(scopes)),
    }


def parse_time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _parse_date(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def event_from_api(data: Mapping[str, Any]) -> Event:
    start = data.get("start") or {}
    end = data.get("end") or {}
    attendees = tuple(
        Attendee(
            email=str(a.get("email", "")),
            response_status=str(a.get("responseStatus", ResponseStatus.NEEDS_ACTION)),
            is_self=bool(a.get("self", False)),
            is_organizer=bool(a.get("organizer", False)),
            display_name=str(a.get("displayName", "")),
        )
        for a in data.get("attendees") or ()
        if isinstance(a, Mapping)
    )
    private = ((data.get("extendedProperties") or {}).get("private")) or {}
    return Event(
        id=str(data.get("id", "")),
        status=str(data.get("status", EventStatus.CONFIRMED)),
        etag=str(data.get("etag", "")),
        ical_uid=str(data.get("iCalUID", "")),
        summary=str(data.get("summary", "")),
        description=str(data.get("description", "")),
        start=parse_time(start.get("dateTime")),
        end=parse_time(end.get("dateTime")),
        start_date=_parse_date(start.get("date")),
        end_date=_parse_date(end.get("date")),
        attendees=attendees,
        sequence=int(data.get("sequence", 0) or 0),
        updated=parse_time(data.get("updated")),
        recurring_event_id=data.get("recurringEventId"),
        private_properties={str(k): str(v) for k, v in private.items()},
        raw=dict(data),
    )
