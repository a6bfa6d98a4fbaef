"""The Calendar API client of one account, over google-api-python-client and google-auth.

A discovery service and an ``httplib2.Http`` are built per client (``httplib2`` is not
thread-safe): build one client per task, never share one between threads. Credentials are built
directly with ``token_uri=settings.GOOGLE_TOKEN_URI`` (``Credentials.from_authorized_user_info``
would reset it to Google's). google-auth refreshes an expired token before a request and
replays once after a 401; a refreshed token lives only on the object, so the client hands it to
``on_refresh``. 429, the two rate-limit 403 reasons and 5xx are retried here with exponential
backoff and jitter (``GOOGLE_API_MAX_RETRIES``, ``GOOGLE_API_BACKOFF_SECONDS``). Timeouts and
refused connections are not retried here (a write may have been applied): they raise
:class:`Unavailable` and the calling task decides.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import google_auth_httplib2
import httplib2
from django.conf import settings
from django.utils import timezone
from google.auth import exceptions as google_auth_exceptions
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from calendars.metrics import counter_increment
from calendars.providers.google.errors import (
    Unavailable,
    classify,
    is_retryable,
    refresh_error,
)
from calendars.providers.google.types import (
    BusyInterval,
    CalendarListEntry,
    Channel,
    Event,
    EventPage,
    FreeBusy,
    SendUpdates,
    event_from_api,
    parse_time,
)
from calendars.retry import retry_policy

logger = logging.getLogger(__name__)


def _rfc3339(moment: dt.datetime) -> str:
    if timezone.is_naive(moment):
        raise ValueError("an aware datetime is needed")
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def call_count(operation: str, outcome: str) -> None:
    """Count one Calendar API request (``/metrics``: convoke_google_calls by method and
    outcome, the outcome being ``ok`` or Google's error reason)."""
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in outcome)[:64]
    counter_increment("convoke_google_calls", method=operation, outcome=safe or "unknown")


# --- The client -------------------------------------------------------------------------------


class GoogleCalendarClient:
    """Calendar API calls for one account. Build one per task; not thread-safe.

    ``on_refresh`` is called with the credentials after google-auth refreshed the access token,
    so that the caller stores it: the adapter never writes to the database (the Google app's
    :func:`gcal_push.accounts.google_client` builds clients that store it).
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
                call_count(operation, "ok")
                return result
            except HttpError as exc:
                error = classify(exc)
                call_count(operation, error.reason or f"http_{error.status}")
                policy = retry_policy("google_api")
                if is_retryable(error) and not policy.exhausted(attempts=attempt + 1):
                    delay = policy.delay(failures=attempt + 1)
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
                call_count(operation, "token_refresh_refused")
                raise refresh_error(exc) from exc
            except google_auth_exceptions.TransportError as exc:
                call_count(operation, "token_endpoint_unreachable")
                raise Unavailable("no answer from Google's token endpoint") from exc
            except (TimeoutError, ConnectionError, httplib2.HttpLib2Error, OSError) as exc:
                call_count(operation, "timeout" if isinstance(exc, TimeoutError) else "connection")
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

    def event_delete(
        self,
        *,
        calendar_id: str,
        event_id: str,
        send_updates: SendUpdates,
        etag: str | None = None,
    ) -> None:
        """``events.delete``. Raises :class:`Gone` (deleted before) or :class:`NotFound`;
        with ``etag``, ``If-Match`` makes a concurrent change raise
        :class:`PreconditionFailed` instead of being deleted unseen."""

        def make() -> Any:
            request = self._service.events().delete(
                calendarId=calendar_id, eventId=event_id, sendUpdates=str(send_updates)
            )
            if etag:
                request.headers["If-Match"] = etag
            return request

        self._execute("events.delete", make)

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
                start, end = parse_time(item.get("start")), parse_time(item.get("end"))
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
