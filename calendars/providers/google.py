"""The Google Calendar API v3 adapter, over google-api-python-client and google-auth.

Every Google address comes from settings (``GOOGLE_API_ENDPOINT``, ``GOOGLE_AUTH_URI``,
``GOOGLE_TOKEN_URI``, ``GOOGLE_REVOKE_URI``) so tests and staging can point at a fake.
Facts relied on are in the contract ``contracts/google-calendar.md``; the API reference is
https://developers.google.com/workspace/calendar/api/v3/reference.

- :class:`GoogleCalendarClient` wraps one account's credentials. A discovery service and an
  ``httplib2.Http`` are built per client (``httplib2`` is not thread-safe): build one client per
  task, never share one between threads.
- Credentials are built directly with ``token_uri=settings.GOOGLE_TOKEN_URI``
  (``Credentials.from_authorized_user_info`` would reset it to Google's). google-auth refreshes
  an expired token before a request and replays once after a 401; a refreshed token lives only
  on the object, so the client writes it back, encrypted, to the :class:`GoogleAccount`.
- Errors become our own exceptions by reason (:class:`RateLimited`, :class:`AuthRevoked`,
  :class:`Gone`, :class:`Duplicate`, :class:`PreconditionFailed`, :class:`SyncTokenInvalid`,
  :class:`NotFound`, :class:`PushNotSupported`, ...), chained to the library's error.
- 429, the two rate-limit 403 reasons and 5xx are retried here with exponential backoff and
  jitter (``GOOGLE_API_MAX_RETRIES``, ``GOOGLE_API_BACKOFF_SECONDS``). Timeouts and refused
  connections are not retried here (a write may have been applied): they raise
  :class:`Unavailable` and the calling task decides.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

import google_auth_httplib2
import httplib2
import requests
from django.conf import settings
from django.utils import timezone
from google.auth import exceptions as google_auth_exceptions
from google.auth import jwt as google_jwt
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from calendars.metrics import counter_increment
from calendars.models import GoogleAccount
from calendars.providers import ProviderError, TransientProviderError

logger = logging.getLogger(__name__)

SCOPE_EVENTS = "https://www.googleapis.com/auth/calendar.events"
SCOPE_CALENDAR_LIST = "https://www.googleapis.com/auth/calendar.calendarlist.readonly"
SCOPE_FREEBUSY = "https://www.googleapis.com/auth/calendar.freebusy"
SCOPE_EMAIL = "https://www.googleapis.com/auth/userinfo.email"
# openid makes the token endpoint return an id_token naming the account (its "sub").
SCOPES: tuple[str, ...] = ("openid", SCOPE_EMAIL, SCOPE_EVENTS, SCOPE_CALENDAR_LIST, SCOPE_FREEBUSY)
REQUIRED_SCOPES: frozenset[str] = frozenset({SCOPE_EVENTS, SCOPE_CALENDAR_LIST, SCOPE_FREEBUSY})

MAX_LIST_PAGES = 1000  # a bound on pages followed in one listing (2,500 events each at most)
BACKOFF_CAP_SECONDS = 32.0
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


# --- Exceptions -------------------------------------------------------------------------------


class GoogleError(ProviderError):
    """Google refused a request. ``status`` is the HTTP status, ``reason`` Google's reason."""

    reason = "google_error"

    def __init__(self, message: str = "", *, status: int | None = None, reason: str | None = None):
        super().__init__(message, reason=reason)
        self.status = status


class BadRequest(GoogleError):
    """400 for a reason that no other class covers (invalid value, missing field...)."""

    reason = "badRequest"


class Forbidden(GoogleError):
    """403 that is not a rate limit (no access to the calendar, ...)."""

    reason = "forbidden"


class NotFound(GoogleError):
    """404: the event, calendar or channel does not exist (or is not shared with the account)."""

    reason = "notFound"


class Gone(GoogleError):
    """410 ``deleted``: the event was deleted already."""

    reason = "deleted"


class Duplicate(GoogleError):
    """409 ``duplicate``: an event with this id exists (or existed) in the calendar."""

    reason = "duplicate"


class PreconditionFailed(GoogleError):
    """412 ``conditionNotMet``: the event changed since the etag sent in ``If-Match``."""

    reason = "conditionNotMet"


class SyncTokenInvalid(GoogleError):
    """410 ``fullSyncRequired``: the sync token is dead; do a full sync and reconcile."""

    reason = "fullSyncRequired"


class PushNotSupported(GoogleError):
    """400 ``pushNotSupportedForRequestedResource``: this calendar cannot be watched."""

    reason = "pushNotSupportedForRequestedResource"


class ChannelIdNotUnique(GoogleError):
    """400 ``channelIdNotUnique``: a channel with this id was created before."""

    reason = "channelIdNotUnique"


class AuthRevoked(GoogleError):
    """The grant is revoked or expired (``invalid_grant``): the account must reconnect."""

    reason = "invalid_grant"


class AuthFailed(GoogleError):
    """401 even after a refresh, or credentials missing: the request could not be authorised."""

    reason = "authError"


class RateLimited(GoogleError, TransientProviderError):
    """429, a rate-limit 403 that outlasted our retries, or ``quotaExceeded``."""

    reason = "rateLimitExceeded"


class Unavailable(GoogleError, TransientProviderError):
    """5xx after our retries, a timeout, or no connection. The request may have been applied."""

    reason = "backendError"


class OAuthError(GoogleError):
    """The token endpoint refused an authorization code (bad, reused, wrong verifier...)."""

    reason = "oauth_error"


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
class EventListing:
    """Every page of a listing, and the sync token the last page carried."""

    events: tuple[Event, ...]
    next_sync_token: str | None
    pages: int


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

    def stored_credentials(self) -> dict[str, Any]:
        return credentials_document(
            token=self.access_token,
            refresh_token=self.refresh_token,
            expiry=self.expiry,
            scopes=self.scopes,
        )


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


def _parse_time(value: str | None) -> dt.datetime | None:
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
        start=_parse_time(start.get("dateTime")),
        end=_parse_time(end.get("dateTime")),
        start_date=_parse_date(start.get("date")),
        end_date=_parse_date(end.get("date")),
        attendees=attendees,
        sequence=int(data.get("sequence", 0) or 0),
        updated=_parse_time(data.get("updated")),
        recurring_event_id=data.get("recurringEventId"),
        private_properties={str(k): str(v) for k, v in private.items()},
        raw=dict(data),
    )


def _rfc3339(moment: dt.datetime) -> str:
    if timezone.is_naive(moment):
        raise ValueError("an aware datetime is needed")
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _error_reasons(exc: HttpError) -> list[str]:
    details = exc.error_details if isinstance(exc.error_details, list) else []
    return [str(d.get("reason", "")) for d in details if isinstance(d, Mapping)]


def _classify(exc: HttpError) -> GoogleError:
    """Our exception for a Google error response (contract table "Errors")."""
    status = int(exc.status_code)
    reasons = _error_reasons(exc)
    reason = reasons[0] if reasons else ""
    message = f"Google answered {status} {reason or exc.reason}".strip()
    kwargs: dict[str, Any] = {"status": status}
    if status == 429 or (status == 403 and RATE_LIMIT_REASONS.intersection(reasons)):
        return RateLimited(message, reason=reason or "rateLimitExceeded", **kwargs)
    if status == 403 and "quotaExceeded" in reasons:
        error = RateLimited(message, reason="quotaExceeded", **kwargs)
        error.retry_after_seconds = 15 * 60.0
        return error
    if status >= 500:
        return Unavailable(message, reason=reason or "backendError", **kwargs)
    if status == 401:
        return AuthFailed(message, **kwargs)
    if status == 403:
        return Forbidden(message, reason=reason or "forbidden", **kwargs)
    if status == 404:
        return NotFound(message, **kwargs)
    if status == 409:
        return Duplicate(message, **kwargs)
    if status == 410:
        if "fullSyncRequired" in reasons:
            return SyncTokenInvalid(message, **kwargs)
        return Gone(message, **kwargs)
    if status == 412:
        return PreconditionFailed(message, **kwargs)
    if status == 400 and "pushNotSupportedForRequestedResource" in reasons:
        return PushNotSupported(message, **kwargs)
    if status == 400 and "channelIdNotUnique" in reasons:
        return ChannelIdNotUnique(message, **kwargs)
    return BadRequest(message, reason=reason or "badRequest", **kwargs)


def _is_retryable(error: GoogleError) -> bool:
    return isinstance(error, Unavailable) or (
        isinstance(error, RateLimited) and error.reason != "quotaExceeded"
    )


def backoff_seconds(attempt: int, *, base: float | None = None) -> float:
    """Exponential backoff with jitter: ``base * 2**attempt``, between half and all of it."""
    base = settings.GOOGLE_API_BACKOFF_SECONDS if base is None else base
    ceiling = min(BACKOFF_CAP_SECONDS, base * (2**attempt))
    return ceiling * random.uniform(0.5, 1.0)


def _refresh_error(exc: google_auth_exceptions.RefreshError) -> GoogleError:
    data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], Mapping) else {}
    error = str(data.get("error", "")) if data else ""
    if error == "invalid_grant" or (
        not data and "invalid_grant" in str(exc.args[0] if exc.args else "")
    ):
        return AuthRevoked("Google refused the refresh token (invalid_grant)")
    if getattr(exc, "retryable", False):
        return Unavailable("Google's token endpoint failed", reason="tokenEndpointError")
    return AuthFailed(f"Google refused to refresh the token ({error or 'unknown error'})")


def _call_count(operation: str, outcome: str) -> None:
    """Count one Calendar API request (``/metrics``: convoke_google_calls by method and
    outcome, the outcome being ``ok`` or Google's error reason)."""
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in outcome)[:64]
    counter_increment("convoke_google_calls", method=operation, outcome=safe or "unknown")


# --- The client -------------------------------------------------------------------------------


class GoogleCalendarClient:
    """Calendar API calls for one account. Build one per task; not thread-safe.

    ``on_refresh`` is called with the credentials after google-auth refreshed the access token,
    so that the caller stores it (:meth:`for_account` stores it on the account).
    """

    def __init__(
        self,
        *,
        credentials: Credentials,
        on_refresh: Callable[[Credentials], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._credentials = credentials
        self._on_refresh = on_refresh
        self._sleep = sleep
        self._known_token = credentials.token
        http = google_auth_httplib2.AuthorizedHttp(
            credentials, http=httplib2.Http(timeout=settings.GOOGLE_API_TIMEOUT_SECONDS)
        )
        # Equivalent to build(..., credentials=credentials) except that the timeout is ours.
        self._service = build(
            "calendar",
            "v3",
            http=http,
            static_discovery=True,
            cache_discovery=False,
            client_options={"api_endpoint": settings.GOOGLE_API_ENDPOINT},
        )

    @classmethod
    def for_account(cls, account: GoogleAccount) -> GoogleCalendarClient:
        """A client with the account's stored credentials; refreshed tokens are written back."""
        raw: Any = account.credentials  # an EncryptedJSONField holds the decrypted JSON
        stored: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {}
        if account.revoked or (not stored.get("refresh_token") and not stored.get("token")):
            raise AuthRevoked("the Google account is disconnected")
        credentials = credentials_from_document(stored)
        account_id = account.pk

        def store(refreshed: Credentials) -> None:
            document = credentials_document(
                token=refreshed.token,
                refresh_token=refreshed.refresh_token,
                expiry=refreshed.expiry,
                scopes=stored.get("scopes") or (),
            )
            updated = GoogleAccount.objects.filter(pk=account_id, revoked=False).update(
                credentials=document, updated_at=timezone.now()
            )
            logger.info("google token refreshed account=%s stored=%s", account_id, bool(updated))

        return cls(credentials=credentials, on_refresh=store)

    # -- plumbing --

    def _after_call(self) -> None:
        if self._credentials.token != self._known_token:
            self._known_token = self._credentials.token
            if self._on_refresh is not None:
                self._on_refresh(self._credentials)

    def _execute(self, operation: str, make_request: Callable[[], Any]) -> Any:
        attempt = 0
        while True:
            try:
                try:
                    result = make_request().execute(num_retries=0)
                finally:
                    self._after_call()
                _call_count(operation, "ok")
                return result
            except HttpError as exc:
                error = _classify(exc)
                _call_count(operation, error.reason or f"http_{error.status}")
                if _is_retryable(error) and attempt < settings.GOOGLE_API_MAX_RETRIES:
                    delay = backoff_seconds(attempt)
                    logger.warning(
                        "google %s answered %s (%s); retry %d in %.2fs",
                        operation,
                        error.status,
                        error.reason,
                        attempt + 1,
                        delay,
                    )
                    self._sleep(delay)
                    attempt += 1
                    continue
                raise error from exc
            except google_auth_exceptions.RefreshError as exc:
                _call_count(operation, "token_refresh_refused")
                raise _refresh_error(exc) from exc
            except google_auth_exceptions.TransportError as exc:
                _call_count(operation, "token_endpoint_unreachable")
                raise Unavailable("no answer from Google's token endpoint") from exc
            except (TimeoutError, ConnectionError, httplib2.HttpLib2Error, OSError) as exc:
                _call_count(operation, "timeout" if isinstance(exc, TimeoutError) else "connection")
                raise Unavailable(
                    f"no answer from Google for {operation} ({type(exc).__name__})",
                    reason="timeout" if isinstance(exc, TimeoutError) else "connection",
                ) from exc

    # -- events --

    def event_insert(
        self, *, calendar_id: str, event: Mapping[str, Any], send_updates: SendUpdates
    ) -> Event:
        """``events.insert``. A re-used ``event["id"]`` raises :class:`Duplicate`."""
        data = self._execute(
            "events.insert",
            lambda: self._service.events().insert(
                calendarId=calendar_id, body=dict(event), sendUpdates=str(send_updates)
            ),
        )
        return event_from_api(data)

    def event_import(self, *, calendar_id: str, event: Mapping[str, Any]) -> Event:
        """``events.import``: a private copy keyed by ``iCalUID``; Google sends no email."""
        if not event.get("iCalUID"):
            raise ValueError("events.import needs an iCalUID")
        data = self._execute(
            "events.import",
            lambda: self._service.events().import_(calendarId=calendar_id, body=dict(event)),
        )
        return event_from_api(data)

    def event_get(self, *, calendar_id: str, event_id: str) -> Event:
        data = self._execute(
            "events.get",
            lambda: self._service.events().get(calendarId=calendar_id, eventId=event_id),
        )
        return event_from_api(data)

    def event_patch(
        self,
        *,
        calendar_id: str,
        event_id: str,
        changes: Mapping[str, Any],
        send_updates: SendUpdates,
        etag: str | None = None,
    ) -> Event:
        """``events.patch``; with ``etag``, ``If-Match`` makes a concurrent change raise
        :class:`PreconditionFailed` instead of being overwritten."""

        def make() -> Any:
            request = self._service.events().patch(
                calendarId=calendar_id,
                eventId=event_id,
                body=dict(changes),
                sendUpdates=str(send_updates),
            )
            if etag:
                request.headers["If-Match"] = etag
            return request

        return event_from_api(self._execute("events.patch", make))

    def event_delete(self, *, calendar_id: str, event_id: str, send_updates: SendUpdates) -> None:
        """``events.delete``. Raises :class:`Gone` (deleted before) or :class:`NotFound`."""
        self._execute(
            "events.delete",
            lambda: self._service.events().delete(
                calendarId=calendar_id, eventId=event_id, sendUpdates=str(send_updates)
            ),
        )

    def events_page(
        self,
        *,
        calendar_id: str,
        sync_token: str | None = None,
        page_token: str | None = None,
        max_results: int | None = None,
        show_deleted: bool | None = None,
        single_events: bool | None = None,
        time_min: dt.datetime | None = None,
    ) -> EventPage:
        """One page of ``events.list``. Parameters left ``None`` are not sent at all.

        With ``sync_token`` the listing is incremental (deleted events included) and
        ``time_min`` is refused, as Google does; :class:`SyncTokenInvalid` means a full sync.
        """
        if sync_token is not None and not sync_token:
            raise ValueError("an empty sync token would silently become a full listing")
        if sync_token is not None and time_min is not None:
            raise ValueError("Google refuses timeMin with a sync token")
        params: dict[str, Any] = {"calendarId": calendar_id}
        if sync_token is not None:
            params["syncToken"] = sync_token
        if page_token is not None:
            params["pageToken"] = page_token
        if max_results is not None:
            params["maxResults"] = max_results
        if show_deleted is not None:
            params["showDeleted"] = show_deleted
        if single_events is not None:
            params["singleEvents"] = single_events
        if time_min is not None:
            params["timeMin"] = _rfc3339(time_min)
        data = self._execute("events.list", lambda: self._service.events().list(**params))
        return EventPage(
            events=tuple(event_from_api(item) for item in data.get("items") or ()),
            next_page_token=data.get("nextPageToken"),
            next_sync_token=data.get("nextSyncToken"),
        )

    def events_list(
        self,
        *,
        calendar_id: str,
        sync_token: str | None = None,
        max_results: int | None = None,
        show_deleted: bool | None = None,
        single_events: bool | None = None,
        time_min: dt.datetime | None = None,
        max_pages: int = MAX_LIST_PAGES,
    ) -> EventListing:
        """Every page of a full (no ``sync_token``) or incremental listing.

        Follows ``nextPageToken`` (empty pages included) until a page carries
        ``nextSyncToken``. Store that token only after applying every event.
        """
        events: list[Event] = []
        page_token: str | None = None
        for pages in range(1, max_pages + 1):
            page = self.events_page(
                calendar_id=calendar_id,
                sync_token=sync_token,
                page_token=page_token,
                max_results=max_results,
                show_deleted=show_deleted,
                single_events=single_events,
                time_min=time_min,
            )
            events.extend(page.events)
            if not page.next_page_token:
                return EventListing(
                    events=tuple(events), next_sync_token=page.next_sync_token, pages=pages
                )
            page_token = page.next_page_token
        raise Unavailable(
            f"events.list did not end within {max_pages} pages", reason="tooManyPages"
        )

    # -- channels --

    def events_watch(
        self,
        *,
        calendar_id: str,
        channel_id: str,
        address: str,
        token: str | None = None,
        ttl_seconds: int | None = None,
    ) -> Channel:
        """``events.watch``: a new push channel. Read the granted expiration from the result."""
        body: dict[str, Any] = {"id": channel_id, "type": "web_hook", "address": address}
        if token is not None:
            body["token"] = token
        if ttl_seconds is not None:
            body["params"] = {"ttl": str(int(ttl_seconds))}
        data = self._execute(
            "events.watch",
            lambda: self._service.events().watch(calendarId=calendar_id, body=body),
        )
        expiration = data.get("expiration")
        return Channel(
            id=str(data.get("id", channel_id)),
            resource_id=str(data.get("resourceId", "")),
            resource_uri=str(data.get("resourceUri", "")),
            expiration=(
                dt.datetime.fromtimestamp(int(expiration) / 1000, tz=dt.UTC) if expiration else None
            ),
            token=data.get("token"),
        )

    def channel_stop(self, *, channel_id: str, resource_id: str) -> None:
        """``channels.stop``. An unknown or stopped channel raises :class:`NotFound`."""
        self._execute(
            "channels.stop",
            lambda: self._service.channels().stop(
                body={"id": channel_id, "resourceId": resource_id}
            ),
        )

    # -- availability and calendars --

    def freebusy(
        self, *, calendar_ids: Iterable[str], time_min: dt.datetime, time_max: dt.datetime
    ) -> FreeBusy:
        ids = list(calendar_ids)
        body = {
            "timeMin": _rfc3339(time_min),
            "timeMax": _rfc3339(time_max),
            "items": [{"id": calendar_id} for calendar_id in ids],
        }
        data = self._execute("freebusy.query", lambda: self._service.freebusy().query(body=body))
        busy: dict[str, tuple[BusyInterval, ...]] = {}
        errors: dict[str, str] = {}
        for calendar_id, entry in (data.get("calendars") or {}).items():
            if entry.get("errors"):
                errors[calendar_id] = str(entry["errors"][0].get("reason", "unknown"))
            intervals = []
            for item in entry.get("busy") or ():
                start, end = _parse_time(item.get("start")), _parse_time(item.get("end"))
                if start and end:
                    intervals.append(BusyInterval(start=start, end=end))
            busy[calendar_id] = tuple(intervals)
        return FreeBusy(busy=busy, errors=errors)

    def calendar_list(self, *, max_pages: int = 100) -> list[CalendarListEntry]:
        """Every calendar of the account's calendar list (all pages)."""
        entries: list[CalendarListEntry] = []
        page_token: str | None = None
        for _ in range(max_pages):
            params: dict[str, Any] = {"maxResults": 250}
            if page_token:
                params["pageToken"] = page_token
            request_params = dict(params)
            data = self._execute(
                "calendarList.list",
                lambda: self._service.calendarList().list(**request_params),  # noqa: B023
            )
            for item in data.get("items") or ():
                entries.append(
                    CalendarListEntry(
                        id=str(item["id"]),
                        summary=str(item.get("summaryOverride") or item.get("summary") or ""),
                        primary=bool(item.get("primary", False)),
                        access_role=str(item.get("accessRole", "")),
                        time_zone=str(item.get("timeZone", "UTC")),
                    )
                )
            page_token = data.get("nextPageToken")
            if not page_token:
                return entries
        raise Unavailable("calendarList.list did not end", reason="tooManyPages")


def credentials_from_document(stored: Mapping[str, Any]) -> Credentials:
    expiry = stored.get("expiry")
    return Credentials(
        token=stored.get("token"),
        refresh_token=stored.get("refresh_token"),
        token_uri=settings.GOOGLE_TOKEN_URI,
        client_id=settings.GOOGLE_CLIENT_ID,
        client_secret=settings.GOOGLE_CLIENT_SECRET,
        scopes=list(stored.get("scopes") or ()) or None,
        # google-auth compares expiry with a naive UTC "now".
        expiry=dt.datetime.fromisoformat(expiry).replace(tzinfo=None) if expiry else None,
    )


# --- OAuth endpoints (authorization code flow, RFC 6749 section 4.1, PKCE RFC 7636) -------------


def authorization_url(*, redirect_uri: str, state: str, code_challenge: str) -> str:
    """The consent page address: offline access (a refresh token), PKCE S256."""
    params = {
        "client_id": settings.GOOGLE_CLIENT_ID,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(SCOPES),
        "access_type": "offline",
        "prompt": "consent",
        "include_granted_scopes": "true",
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    return f"{settings.GOOGLE_AUTH_URI}?{urlencode(params)}"


def authorization_code_exchange(*, code: str, redirect_uri: str, code_verifier: str) -> TokenGrant:
    """Trade an authorization code for tokens at ``GOOGLE_TOKEN_URI``.

    Done with ``requests`` rather than requests-oauthlib: oauthlib refuses a plain-http token
    endpoint and treats a narrower consent as an error unless environment variables say
    otherwise, while we check the granted scopes ourselves. The id_token comes straight from
    the token endpoint over TLS, which OpenID Connect Core 3.1.3.7 accepts instead of
    verifying its signature; only its ``sub`` and ``email`` are read.
    """
    try:
        response = requests.post(
            settings.GOOGLE_TOKEN_URI,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": settings.GOOGLE_CLIENT_ID,
                "client_secret": settings.GOOGLE_CLIENT_SECRET,
                "code_verifier": code_verifier,
            },
            timeout=settings.GOOGLE_API_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise Unavailable("no answer from Google's token endpoint", reason="connection") from exc
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code >= 500:
        raise Unavailable("Google's token endpoint failed", status=response.status_code)
    if response.status_code != 200 or not isinstance(data, dict) or "access_token" not in data:
        error = str(data.get("error", "")) if isinstance(data, dict) else ""
        raise OAuthError(
            f"Google refused the authorization code ({error or response.status_code})",
            status=response.status_code,
            reason=error or "oauth_error",
        )
    claims: Mapping[str, Any] = {}
    if data.get("id_token"):
        try:
            claims = google_jwt.decode(data["id_token"], verify=False)
        except (ValueError, google_auth_exceptions.GoogleAuthError) as exc:
            raise OAuthError("Google's id_token is malformed", reason="bad_id_token") from exc
    if not claims.get("sub"):
        raise OAuthError("Google did not say which account consented", reason="no_subject")
    expires_in = data.get("expires_in")
    expiry = (
        dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=int(expires_in))
        if expires_in
        else None
    )
    return TokenGrant(
        access_token=str(data["access_token"]),
        refresh_token=data.get("refresh_token"),
        expiry=expiry,
        scopes=tuple(str(data.get("scope", "")).split()),
        subject=str(claims["sub"]),
        email=str(claims.get("email", "")),
    )


def token_revoke(*, token: str) -> bool:
    """Revoke a grant at ``GOOGLE_REVOKE_URI``. True when Google confirmed it (or it was dead)."""
    try:
        response = requests.post(
            settings.GOOGLE_REVOKE_URI,
            data={"token": token},
            timeout=settings.GOOGLE_API_TIMEOUT_SECONDS,
        )
    except requests.RequestException:
        logger.warning("google token revocation: no answer")
        return False
    if response.status_code == 200:
        return True
    # 400 invalid_token: already revoked or expired, which is what we wanted.
    return response.status_code == 400
