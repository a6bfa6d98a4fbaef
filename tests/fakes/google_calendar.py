"""A fake Google Calendar API v3 and OAuth 2.0 server for tests.

A real HTTP server on 127.0.0.1 that the real google-api-python-client and google-auth talk
to, through ``GOOGLE_API_ENDPOINT``, ``GOOGLE_TOKEN_URI``, ``GOOGLE_AUTH_URI`` and
``GOOGLE_REVOKE_URI`` (see :meth:`FakeGoogleCalendar.django_settings`). It follows the
contract in ``docs/google-calendar.md``:

- ``/calendar/v3/calendars/{calendarId}/events``: insert (client-chosen base32hex ids, 409
  ``duplicate`` on a re-used id, deleted ids included), import (upsert by ``iCalUID``, never
  emails), get, patch and update (``If-Match`` gives 412 ``conditionNotMet``), delete (410
  ``deleted`` the second time, 404 ``notFound`` for an unknown id), list (full or incremental
  with ``syncToken``, pages with ``nextPageToken``, ``nextSyncToken`` on the last page, 410
  ``fullSyncRequired`` for a dead token), watch;
- ``/calendar/v3/channels/stop``, ``/calendar/v3/freeBusy``,
  ``/calendar/v3/users/me/calendarList``;
- ``/o/oauth2/auth`` (redirects back with a code, PKCE S256), ``/token`` (authorization code
  and refresh grants, ``invalid_grant``), ``/revoke``.

Error bodies have Google's shape ``{"error": {"code", "message", "errors": [{"domain",
"reason", "message"}]}}``. Every request is recorded (:attr:`FakeGoogleCalendar.requests`)
and the emails Google would have sent for each ``sendUpdates`` value land in
:attr:`FakeGoogleCalendar.outbox`.

The Python API also lets a test act as the people using Google Calendar
(:meth:`~FakeGoogleCalendar.attendee_respond`, :meth:`~FakeGoogleCalendar.event_delete_as_owner`,
...), inject faults (:meth:`~FakeGoogleCalendar.fault_add`,
:meth:`~FakeGoogleCalendar.timeout_after_commit`, :meth:`~FakeGoogleCalendar.access_tokens_expire`,
:meth:`~FakeGoogleCalendar.grant_revoke`), and observe every change through
:meth:`~FakeGoogleCalendar.listener_add` — the hook a push-notification emitter uses, together
with :meth:`~FakeGoogleCalendar.live_channels`.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

CLIENT_ID = "fake-client-id.apps.googleusercontent.com"
CLIENT_SECRET = "fake-client-secret"
ACCESS_TOKEN_LIFETIME = 3599
EVENT_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")
SYNC_TOKEN_FORBIDDEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
SYNC_TOKEN_STABLE = ("singleEvents", "maxResults", "showDeleted", "eventTypes")
DEFAULT_MAX_RESULTS = 250
MAX_MAX_RESULTS = 2500
MAX_CHANNEL_TTL_SECONDS = 30 * 24 * 3600
DEFAULT_CHANNEL_TTL_SECONDS = 7 * 24 * 3600


# --- Records ------------------------------------------------------------------------------


@dataclasses.dataclass
class RecordedRequest:
    """One request the fake received, in arrival order."""

    operation: str  # "events.insert", "oauth.token", ... ("unknown" when no route matched)
    method: str
    path: str  # decoded path, without the query
    query: dict[str, str]  # first value of each parameter
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, a dict for a form, or None
    calendar_id: str | None = None
    event_id: str | None = None
    status: int | None = None  # the status answered (None while in flight or timed out)

    def param(self, name: str) -> str | None:
        return self.query.get(name)


@dataclasses.dataclass(frozen=True)
class OutboxEmail:
    """An email Google would have sent to a guest."""

    kind: str  # "invitation", "update" or "cancellation"
    recipient: str
    calendar_id: str
    event_id: str
    send_updates: str  # the sendUpdates value that caused it ("all" or "externalOnly")
    status: str  # the event's status at that moment ("tentative", "confirmed", "cancelled")


@dataclasses.dataclass
class FakeChannel:
    """A watch channel created with events.watch."""

    id: str
    resource_id: str
    resource_uri: str
    calendar_id: str
    address: str
    token: str | None
    expiration_ms: int
    subject: str
    created_at: dt.datetime
    stopped: bool = False
    stopped_at: dt.datetime | None = None
    message_number: int = 0

    def next_message_number(self) -> int:
        """An increasing message number for the next notification (1 is the sync message)."""
        self.message_number += 1
        return self.message_number


@dataclasses.dataclass(frozen=True)
class Change:
    """Something happened in the fake: what a push-notification emitter reacts to.

    ``kind`` is ``"event"`` (created, changed or deleted; ``event_id`` set), ``"channel_created"``
    or ``"channel_stopped"`` (``channel_id`` set). ``cause`` is ``"api"`` for changes made through
    the HTTP API, ``"simulated"`` for changes made through the Python API.
    """

    kind: str
    calendar_id: str
    cause: str
    event_id: str | None = None
    channel_id: str | None = None


@dataclasses.dataclass
class _Fault:
    operation: str
    status: int
    reason: str
    message: str
    times: int
    body: dict[str, Any] | None = None


@dataclasses.dataclass
class _Timeout:
    operation: str
    seconds: float
    times: int


@dataclasses.dataclass
class FakeAccount:
    subject: str
    email: str
    name: str = ""


@dataclasses.dataclass
class FakeCalendar:
    id: str
    owner_subject: str
    summary: str
    primary: bool = False
    time_zone: str = "UTC"
    access_role: str = "owner"
    push_supported: bool = True
    deleted: bool = False


@dataclasses.dataclass
class _Grant:
    subject: str
    scopes: list[str]
    refresh_token: str | None
    revoked: bool = False


@dataclasses.dataclass
class _AccessToken:
    grant: _Grant
    expired: bool = False


@dataclasses.dataclass
class _StoredEvent:
    calendar_id: str
    resource: dict[str, Any]
    change_seq: int
    deleted: bool = False

    @property
    def etag(self) -> str:
        return f'"{3_100_000_000_000_000 + self.change_seq}"'

    def public(self) -> dict[str, Any]:
        body = copy.deepcopy(self.resource)
        body["etag"] = self.etag
        return body

    def tombstone(self) -> dict[str, Any]:
        return {
            "kind": "calendar#event",
            "etag": self.etag,
            "id": self.resource["id"],
            "status": "cancelled",
        }


class GoogleApiError(Exception):
    """Raised inside the fake to answer with Google's error shape."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        domain: str = "global",
        location: str | None = None,
        location_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.domain = domain
        self.location = location
        self.location_type = location_type

    def body(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "domain": self.domain,
            "reason": self.reason,
            "message": self.message,
        }
        if self.location:
            detail["location"] = self.location
            detail["locationType"] = self.location_type or "parameter"
        return {"error": {"code": self.status, "message": self.message, "errors": [detail]}}


class _OAuthError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("an RFC 3339 timestamp needs an offset")
    return moment


def _event_bound(value: Any) -> dt.datetime | None:
    """The instant of an event's ``start``/``end`` object (all-day dates at UTC midnight)."""
    if not isinstance(value, dict):
        return None
    if value.get("dateTime"):
        return parse_rfc3339(str(value["dateTime"]))
    if value.get("date"):
        return dt.datetime.combine(dt.date.fromisoformat(str(value["date"])), dt.time(), dt.UTC)
    return None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _truthy(value: str | None) -> bool:
    return (value or "").lower() == "true"


class FakeGoogleCalendar:
    """The fake's state, its Python API and its HTTP server.

    Start it with :meth:`start` (or use it as a context manager), point Django at it with
    :meth:`django_settings`, and :meth:`reset` between tests.
    """

    def __init__(self, *, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._release = threading.Event()  # wakes handlers sleeping in a timeout fault
        self.require_https_webhooks = True
        self._reset_state()

    # --- Life cycle ------------------------------------------------------------------------

    def start(self) -> FakeGoogleCalendar:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-google", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeGoogleCalendar:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every account, calendar, event, channel, record and fault."""
        with self._lock:
            self._release.set()
            self._reset_state()
            self._release = threading.Event()

    def _reset_state(self) -> None:
        self.requests: list[RecordedRequest] = []
        # (calendar id, event id) of every deleted event a patch or update brought back.
        self.restored: list[tuple[str, str]] = []
        self.outbox: list[OutboxEmail] = []
        self.accounts: dict[str, FakeAccount] = {}
        self.calendars: dict[str, FakeCalendar] = {}
        self.channels: dict[str, FakeChannel] = {}
        self.channel_ttl_cap_seconds = MAX_CHANNEL_TTL_SECONDS
        self.require_https_webhooks = True
        self.empty_page_before_last = False
        self._events: dict[str, dict[str, _StoredEvent]] = {}
        self._busy: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
        self._grants: list[_Grant] = []
        self._access_tokens: dict[str, _AccessToken] = {}
        self._codes: dict[str, dict[str, Any]] = {}
        self._sync_generation: dict[str, int] = {}
        self._sync_tokens: dict[str, dict[str, Any]] = {}
        self._page_tokens: dict[str, dict[str, Any]] = {}
        self._faults: list[_Fault] = []
        self._timeouts: list[_Timeout] = []
        self._listeners: list[Callable[[Change], None]] = []
        self._seq = itertools.count(1)
        self._last_seq = 0
        self.consent_subject: str | None = None
        self.consent_scopes: list[str] | None = None
        self.consent_denied = False

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake Google server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_endpoint(self) -> str:
        return f"{self.base_url}/calendar/v3/"

    @property
    def auth_uri(self) -> str:
        return f"{self.base_url}/o/oauth2/auth"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    @property
    def revoke_uri(self) -> str:
        return f"{self.base_url}/revoke"

    def django_settings(self) -> dict[str, str]:
        """The Django settings that point Convoke at this fake."""
        return {
            "GOOGLE_API_ENDPOINT": self.api_endpoint,
            "GOOGLE_AUTH_URI": self.auth_uri,
            "GOOGLE_TOKEN_URI": self.token_uri,
            "GOOGLE_REVOKE_URI": self.revoke_uri,
            "GOOGLE_CLIENT_ID": self.client_id,
            "GOOGLE_CLIENT_SECRET": self.client_secret,
        }

    # --- Accounts, calendars, grants --------------------------------------------------------

    def account_add(
        self,
        *,
        subject: str,
        email: str,
        name: str = "",
        calendars: tuple[str, ...] = (),
    ) -> FakeAccount:
        """A Google account whose primary calendar id is its email, plus ``calendars``."""
        with self._lock:
            account = FakeAccount(subject=subject, email=email, name=name)
            self.accounts[subject] = account
            self.calendar_add(calendar_id=email, subject=subject, summary=email, primary=True)
            for calendar_id in calendars:
                self.calendar_add(calendar_id=calendar_id, subject=subject, summary=calendar_id)
            if self.consent_subject is None:
                self.consent_subject = subject
            return account

    def calendar_add(
        self,
        *,
        calendar_id: str,
        subject: str,
        summary: str = "",
        primary: bool = False,
        time_zone: str = "UTC",
        access_role: str = "owner",
        push_supported: bool = True,
    ) -> FakeCalendar:
        with self._lock:
            calendar = FakeCalendar(
                id=calendar_id,
                owner_subject=subject,
                summary=summary or calendar_id,
                primary=primary,
                time_zone=time_zone,
                access_role=access_role,
                push_supported=push_supported,
            )
            self.calendars[calendar_id] = calendar
            self._events.setdefault(calendar_id, {})
            self._sync_generation.setdefault(calendar_id, 0)
            return calendar

    def tokens_issue(self, *, subject: str, scopes: tuple[str, ...] = ()) -> tuple[str, str]:
        """A grant for an account, as if it had consented earlier: (access, refresh) token."""
        with self._lock:
            grant = _Grant(
                subject=subject,
                scopes=list(scopes),
                refresh_token="1//fake-refresh-" + secrets.token_urlsafe(24),
            )
            self._grants.append(grant)
            access = self._access_token_new(grant)
            assert grant.refresh_token is not None
            return access, grant.refresh_token

    def access_tokens_expire(self, *, subject: str | None = None) -> int:
        """Every current access token (of ``subject``) now gets 401: the client must refresh."""
        with self._lock:
            count = 0
            for token in self._access_tokens.values():
                if (subject is None or token.grant.subject == subject) and not token.expired:
                    token.expired = True
                    count += 1
            return count

    def grant_revoke(self, *, subject: str) -> None:
        """The user revoked access: refreshes get ``invalid_grant``, access tokens get 401."""
        with self._lock:
            for grant in self._grants:
                if grant.subject == subject:
                    grant.revoked = True

    def refresh_count(self, *, subject: str | None = None) -> int:
        """How many refresh-token grants the token endpoint answered with success."""
        return sum(
            1
            for r in self.requests
            if r.operation == "oauth.token"
            and isinstance(r.body, dict)
            and r.body.get("grant_type") == "refresh_token"
            and r.status == 200
            and (
                subject is None or self._subject_of_refresh(r.body.get("refresh_token")) == subject
            )
        )

    def _subject_of_refresh(self, refresh_token: str | None) -> str | None:
        for grant in self._grants:
            if grant.refresh_token == refresh_token:
                return grant.subject
        return None

    def _access_token_new(self, grant: _Grant) -> str:
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        self._access_tokens[token] = _AccessToken(grant=grant)
        return token

    # --- Events: inspection and simulation ----------------------------------------------------

    def events(self, calendar_id: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """The calendar's events as the API would show them (deleted ones as ``cancelled``)."""
        with self._lock:
            stored = self._events.get(calendar_id, {}).values()
            return [e.public() for e in stored if include_deleted or not e.deleted]

    def event(self, calendar_id: str, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            stored = self._events.get(calendar_id, {}).get(event_id)
            return stored.public() if stored else None

    def event_seed(self, calendar_id: str, resource: dict[str, Any]) -> dict[str, Any]:
        """Put an event in a calendar directly (as if created in Google's own interface)."""
        with self._lock:
            event_id = resource.get("id") or self._new_event_id()
            body = self._event_new(calendar_id, {**resource, "id": event_id})
            self._store(calendar_id, body)
        self._notify(
            Change(kind="event", calendar_id=calendar_id, cause="simulated", event_id=event_id)
        )
        return self.event(calendar_id, event_id) or {}

    def busy_add(self, calendar_id: str, start: dt.datetime, end: dt.datetime) -> None:
        """Busy time that freebusy reports (for example from another calendar of the user)."""
        with self._lock:
            self._busy.setdefault(calendar_id, []).append((start, end))

    def attendee_respond(
        self, calendar_id: str, event_id: str, *, email: str, response_status: str
    ) -> dict[str, Any]:
        """A guest answers the invitation (``accepted``, ``declined``, ``tentative``...)."""
        if response_status not in ("needsAction", "accepted", "declined", "tentative"):
            raise ValueError(f"not a responseStatus: {response_status}")
        with self._lock:
            stored = self._stored(calendar_id, event_id)
            for attendee in stored.resource.get("attendees", []):
                if attendee.get("email", "").lower() == email.lower():
                    attendee["responseStatus"] = response_status
                    break
            else:
                raise KeyError(f"{email} is not a guest of {event_id}")
            self._touch(stored)
        self._notify(
            Change(kind="event", calendar_id=calendar_id, cause="simulated", event_id=event_id)
        )
        return self.event(calendar_id, event_id) or {}

    def event_delete_as_owner(self, calendar_id: str, event_id: str) -> None:
        """The calendar's owner deletes the event in Google Calendar."""
        with self._lock:
            stored = self._stored(calendar_id, event_id)
            stored.deleted = True
            stored.resource["status"] = "cancelled"
            self._touch(stored)
        self._notify(
            Change(kind="event", calendar_id=calendar_id, cause="simulated", event_id=event_id)
        )

    def event_update_as_owner(
        self, calendar_id: str, event_id: str, **fields: Any
    ) -> dict[str, Any]:
        """The calendar's owner edits the event in Google Calendar (fields as in the API)."""
        with self._lock:
            stored = self._stored(calendar_id, event_id)
            stored.resource.update(copy.deepcopy(fields))
            self._touch(stored)
        self._notify(
            Change(kind="event", calendar_id=calendar_id, cause="simulated", event_id=event_id)
        )
        return self.event(calendar_id, event_id) or {}

    def event_move_as_owner(
        self, calendar_id: str, event_id: str, *, start: dt.datetime, end: dt.datetime
    ) -> dict[str, Any]:
        """The calendar's owner drags the event to another time in Google Calendar: a new
        start and end, SEQUENCE one higher (a significant change, RFC 5546 2.1.4)."""
        with self._lock:
            stored = self._stored(calendar_id, event_id)
            if stored.deleted:
                raise KeyError(f"{event_id} is deleted")
            zone = (stored.resource.get("start") or {}).get("timeZone")
            for name, moment in (("start", start), ("end", end)):
                stored.resource[name] = {"dateTime": rfc3339(moment)}
                if zone:
                    stored.resource[name]["timeZone"] = zone
            stored.resource["sequence"] = int(stored.resource.get("sequence", 0)) + 1
            self._touch(stored)
        self._notify(
            Change(kind="event", calendar_id=calendar_id, cause="simulated", event_id=event_id)
        )
        return self.event(calendar_id, event_id) or {}

    def sync_tokens_invalidate(self, calendar_id: str) -> None:
        """Every sync token of the calendar is now dead: the next incremental list gets 410."""
        with self._lock:
            self._sync_generation[calendar_id] = self._sync_generation.get(calendar_id, 0) + 1

    def _stored(self, calendar_id: str, event_id: str) -> _StoredEvent:
        stored = self._events.get(calendar_id, {}).get(event_id)
        if stored is None:
            raise KeyError(f"no event {event_id} in {calendar_id}")
        return stored

    # --- Channels and listeners ---------------------------------------------------------------

    def live_channels(self, calendar_id: str | None = None) -> list[FakeChannel]:
        """Channels not stopped and not expired, of one calendar or of all."""
        now_ms = int(_now().timestamp() * 1000)
        with self._lock:
            return [
                c
                for c in self.channels.values()
                if not c.stopped
                and c.expiration_ms > now_ms
                and (calendar_id is None or c.calendar_id == calendar_id)
            ]

    def listener_add(self, callback: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``callback`` after every change; returns a function that removes it.

        Callbacks run in the thread that made the change (a request handler for API changes,
        the test's thread for simulated ones), after the fake's lock is released and before the
        API response is written. Keep them quick, or hand the work to a thread of your own.
        """
        with self._lock:
            self._listeners.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return remove

    def _notify(self, change: Change) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(change)

    # --- Faults ---------------------------------------------------------------------------------

    def fault_add(
        self,
        *,
        operation: str,
        status: int,
        reason: str = "",
        message: str = "",
        times: int = 1,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Answer the next ``times`` requests of ``operation`` with an error, doing nothing.

        ``operation`` is a name like ``"events.insert"`` or ``"oauth.token"``, or ``"*"``.
        The body has Google's error shape unless ``body`` is given.
        """
        default_reason = {
            429: "rateLimitExceeded",
            403: "rateLimitExceeded",
            500: "backendError",
            503: "backendError",
            401: "authError",
        }.get(status, "failed")
        with self._lock:
            self._faults.append(
                _Fault(
                    operation=operation,
                    status=status,
                    reason=reason or default_reason,
                    message=message or f"Injected failure ({reason or default_reason})",
                    times=times,
                    body=body,
                )
            )

    def timeout_after_commit(
        self, *, operation: str = "events.insert", seconds: float = 2.0, times: int = 1
    ) -> None:
        """Apply the next ``times`` requests of ``operation``, then answer only after ``seconds``.

        The change is committed (and visible to later requests) before the client gives up, as
        when Google's answer is lost on the way back.
        """
        with self._lock:
            self._timeouts.append(_Timeout(operation=operation, seconds=seconds, times=times))

    def _take_fault(self, operation: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.operation in (operation, "*"):
                    fault.times -= 1
                    return fault
            return None

    def _take_timeout(self, operation: str) -> _Timeout | None:
        with self._lock:
            for timeout in self._timeouts:
                if timeout.times > 0 and timeout.operation == operation:
                    timeout.times -= 1
                    return timeout
            return None

    # --- Records --------------------------------------------------------------------------------

    def requests_for(self, operation: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.operation == operation]

    def api_calls(self) -> list[tuple[str, str | None, str | None]]:
        """(operation, sendUpdates, status in the body) of every Calendar API request."""
        with self._lock:
            return [
                (
                    r.operation,
                    r.param("sendUpdates"),
                    r.body.get("status") if isinstance(r.body, dict) else None,
                )
                for r in self.requests
                if not r.operation.startswith("oauth.")
            ]

    def outbox_for(self, recipient: str) -> list[OutboxEmail]:
        with self._lock:
            return [m for m in self.outbox if m.recipient.lower() == recipient.lower()]

    # --- HTTP dispatch -------------------------------------------------------------------------

    def handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        body: Any = None
        if raw:
            if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
                body = {k: v[0] for k, v in parse_qs(raw.decode("utf-8")).items()}
            else:
                try:
                    body = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    body = raw
        segments = [unquote(s) for s in split.path.split("/")]
        operation, calendar_id, event_id = self._route(handler.command, segments)
        record = RecordedRequest(
            operation=operation,
            method=handler.command,
            path=unquote(split.path),
            query=query,
            headers=headers,
            body=body,
            calendar_id=calendar_id,
            event_id=event_id,
        )
        with self._lock:
            self.requests.append(record)
        fault = self._take_fault(operation)
        if fault is not None:
            if fault.body is not None:
                payload = fault.body
            else:
                payload = GoogleApiError(fault.status, fault.reason, fault.message).body()
            self._respond(handler, record, fault.status, payload)
            return
        try:
            status, payload, extra = self._dispatch(operation, record)
        except GoogleApiError as exc:
            extra = {}
            if exc.status == 401:
                extra["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/"'
            self._respond(handler, record, exc.status, exc.body(), extra)
            return
        except _OAuthError as exc:
            self._respond(
                handler,
                record,
                exc.status,
                {"error": exc.error, "error_description": exc.description},
            )
            return
        timeout = self._take_timeout(operation)
        if timeout is not None:
            self._release.wait(timeout.seconds)
        self._respond(handler, record, status, payload, extra)

    @staticmethod
    def _route(method: str, segments: list[str]) -> tuple[str, str | None, str | None]:
        parts = [s for s in segments if s != ""]
        if parts[:2] == ["calendar", "v3"]:
            rest = parts[2:]
            if len(rest) >= 3 and rest[0] == "calendars" and rest[2] == "events":
                calendar_id = rest[1]
                if len(rest) == 3:
                    return (
                        {"GET": "events.list", "POST": "events.insert"}.get(method, "unknown"),
                        calendar_id,
                        None,
                    )
                if len(rest) == 4:
                    if method == "POST" and rest[3] == "import":
                        return "events.import", calendar_id, None
                    if method == "POST" and rest[3] == "watch":
                        return "events.watch", calendar_id, None
                    operation = {
                        "GET": "events.get",
                        "PATCH": "events.patch",
                        "PUT": "events.update",
                        "DELETE": "events.delete",
                    }.get(method, "unknown")
                    return operation, calendar_id, rest[3]
            if rest == ["channels", "stop"] and method == "POST":
                return "channels.stop", None, None
            if rest == ["freeBusy"] and method == "POST":
                return "freebusy.query", None, None
            if rest == ["users", "me", "calendarList"] and method == "GET":
                return "calendarList.list", None, None
            return "unknown", None, None
        if parts == ["o", "oauth2", "auth"] and method == "GET":
            return "oauth.authorize", None, None
        if parts == ["token"] and method == "POST":
            return "oauth.token", None, None
        if parts == ["revoke"] and method == "POST":
            return "oauth.revoke", None, None
        return "unknown", None, None

    def _respond(
        self,
        handler: _Handler,
        record: RecordedRequest,
        status: int,
        payload: Any,
        extra: dict[str, str] | None = None,
    ) -> None:
        record.status = status
        data = b"" if payload is None else json.dumps(payload).encode("utf-8")
        try:
            handler.send_response(status)
            for name, value in (extra or {}).items():
                handler.send_header(name, value)
            if payload is not None:
                handler.send_header("Content-Type", "application/json; charset=UTF-8")
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if data:
                handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout fault): the change stays committed

    def _dispatch(self, operation: str, record: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        if operation == "oauth.authorize":
            return self._authorize(record)
        if operation == "oauth.token":
            return 200, self._token(record), {}
        if operation == "oauth.revoke":
            return 200, self._revoke(record), {}
        if operation == "unknown":
            raise GoogleApiError(404, "notFound", "Not Found")
        grant = self._authenticate(record)
        handlers: dict[str, Callable[[RecordedRequest, _Grant], tuple[int, Any]]] = {
            "events.insert": self._events_insert,
            "events.import": self._events_import,
            "events.get": self._events_get,
            "events.patch": self._events_patch,
            "events.update": self._events_patch,
            "events.delete": self._events_delete,
            "events.list": self._events_list,
            "events.watch": self._events_watch,
            "channels.stop": self._channels_stop,
            "freebusy.query": self._freebusy,
            "calendarList.list": self._calendar_list,
        }
        status, payload = handlers[operation](record, grant)
        return status, payload, {}

    # --- Authentication -------------------------------------------------------------------------

    def _authenticate(self, record: RecordedRequest) -> _Grant:
        header = record.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        with self._lock:
            entry = self._access_tokens.get(token)
            if entry is None or entry.expired or entry.grant.revoked:
                raise GoogleApiError(
                    401,
                    "authError",
                    "Invalid Credentials",
                    location="Authorization",
                    location_type="header",
                )
            return entry.grant

    def _calendar_for(self, record: RecordedRequest, grant: _Grant) -> FakeCalendar:
        calendar_id = record.calendar_id or ""
        with self._lock:
            if calendar_id == "primary":
                account = self.accounts.get(grant.subject)
                calendar_id = account.email if account else ""
                record.calendar_id = calendar_id
            calendar = self.calendars.get(calendar_id)
            if calendar is None or calendar.deleted or calendar.owner_subject != grant.subject:
                raise GoogleApiError(404, "notFound", "Not Found")
            return calendar

    # --- Events ---------------------------------------------------------------------------------

    def _new_event_id(self) -> str:
        alphabet = "0123456789abcdefghijklmnopqrstuv"
        return "".join(secrets.choice(alphabet) for _ in range(26))

    def _owner_email(self, calendar_id: str) -> str:
        calendar = self.calendars.get(calendar_id)
        account = self.accounts.get(calendar.owner_subject) if calendar else None
        return account.email if account else calendar_id

    def _event_new(self, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise GoogleApiError(400, "parseError", "Parse Error")
        start = _safe_bound(body.get("start"), "start")
        end = _safe_bound(body.get("end"), "end")
        if start is None:
            raise GoogleApiError(400, "required", "Missing start time.")
        if end is None:
            raise GoogleApiError(400, "required", "Missing end time.")
        if end < start:
            raise GoogleApiError(400, "timeRangeEmpty", "The specified time range is empty.")
        status = body.get("status", "confirmed")
        if status not in ("confirmed", "tentative", "cancelled"):
            raise GoogleApiError(400, "invalid", "Invalid value for: status")
        owner = self._owner_email(calendar_id)
        calendar = self.calendars.get(calendar_id)
        now = rfc3339(_now())
        event = copy.deepcopy(body)
        event_id = event["id"]
        event.update(
            {
                "kind": "calendar#event",
                "status": status,
                "htmlLink": f"https://calendar.google.com/calendar/event?eid={event_id}",
                "created": now,
                "updated": now,
                "creator": {"email": owner, "self": True},
                # The organizer is the calendar the event was created in: for a secondary
                # calendar its id, not the owner's address (concepts: "Calendars and events").
                "organizer": {
                    "email": calendar_id,
                    "displayName": calendar.summary if calendar else calendar_id,
                    "self": True,
                },
                "iCalUID": body.get("iCalUID") or f"{event_id}@google.com",
                "sequence": int(body.get("sequence", 0)),
                "eventType": "default",
                "reminders": body.get("reminders", {"useDefault": True}),
            }
        )
        attendees = []
        for attendee in event.get("attendees", []) or []:
            if not isinstance(attendee, dict) or not attendee.get("email"):
                raise GoogleApiError(400, "required", "Missing attendee email.")
            # ``organizer`` and ``self`` are read-only: Google derives them from the address
            # (the organizer's entry is the calendar's own; ``self`` marks this calendar).
            entry = {
                "responseStatus": "needsAction",
                **{k: v for k, v in attendee.items() if k not in ("organizer", "self")},
            }
            if entry["email"].lower() == calendar_id.lower():
                entry["self"] = True
                entry["organizer"] = True
            attendees.append(entry)
        if attendees:
            event["attendees"] = attendees
        return event

    def _store(self, calendar_id: str, event: dict[str, Any]) -> _StoredEvent:
        seq = next(self._seq)
        self._last_seq = seq
        stored = _StoredEvent(calendar_id=calendar_id, resource=event, change_seq=seq)
        self._events.setdefault(calendar_id, {})[event["id"]] = stored
        return stored

    def _touch(self, stored: _StoredEvent) -> None:
        seq = next(self._seq)
        self._last_seq = seq
        stored.change_seq = seq
        stored.resource["updated"] = rfc3339(_now())

    def _mail_guests(self, stored: _StoredEvent, kind: str, send_updates: str | None) -> None:
        if send_updates not in ("all", "externalOnly"):
            return
        owner = self._owner_email(stored.calendar_id)
        owner_domain = owner.rsplit("@", 1)[-1].lower()
        for attendee in stored.resource.get("attendees", []):
            email = attendee.get("email", "")
            if attendee.get("self") or email.lower() == owner.lower():
                continue
            if send_updates == "externalOnly" and email.rsplit("@", 1)[-1].lower() == owner_domain:
                continue
            self.outbox.append(
                OutboxEmail(
                    kind=kind,
                    recipient=email,
                    calendar_id=stored.calendar_id,
                    event_id=stored.resource["id"],
                    send_updates=send_updates,
                    status=stored.resource.get("status", "confirmed"),
                )
            )

    @staticmethod
    def _send_updates(record: RecordedRequest) -> str | None:
        value = record.param("sendUpdates")
        if value is None and _truthy(record.param("sendNotifications")):
            return "all"
        if value not in (None, "all", "externalOnly", "none"):
            raise GoogleApiError(
                400,
                "invalidParameter",
                f"Invalid value for: sendUpdates: {value}",
                location="sendUpdates",
            )
        return value

    def _events_insert(self, record: RecordedRequest, grant: _Grant) -> tuple[int, Any]:
        calendar = self._calendar_for(record, grant)
        send_updates = self._send_updates(record)
        body = record.body if isinstance(record.body, dict) else {}
        with self._lock:
            event_id = body.get("id") or self._new_event_id()
            if not isinstance(event_id, str) or not EVENT_ID_RE.match(event_id):
                raise GoogleApiError(400, "invalid", "Invalid resource id value.")
            if event_id in self._events.get(calendar.id, {}):
                raise GoogleApiError(409, "duplicate", "The requested identifier already exists.")
            event = self._event_new(calendar.id, {**body, "id": event_id})
            stored = self._store(calendar.id, event)
            self._mail_guests(stored, "invitation", send_updates)
            result = stored.public()
        record.event_id = event_id
        self._notify(Change(kind="event", calendar_id=calendar.id, cause="api", event_id=event_id))
        return 200, result

    def _events_import(self, record: RecordedRequest, grant: _Grant) -> tuple[int, Any]:
        calendar = self._calendar_for(record, grant)
        body = record.body if isinstance(record.body, dict) else {}
        ical_uid = body.get("iCalUID")
        if not ical_uid:
            raise GoogleApiError(400, "required", "Missing iCalUID.")
        with self._lock:
            existing = next(
                (
                    e
                    for e in self._events.get(calendar.id, {}).values()
                    if e.resource.get("iCalUID") == ical_uid and not e.deleted
                ),
                None,
            )
            if existing is not None:
                # Import is an upsert by iCalUID: the existing event is updated in place.
                event_id = existing.resource["id"]
                event = self._event_new(calendar.id, {**body, "id": event_id})
                event["created"] = existing.resource["created"]
                existing.resource = event
                self._touch(existing)
                result = existing.public()
            else:
                event_id = body.get("id") or self._new_event_id()
                if not EVENT_ID_RE.match(str(event_id)):
                    raise GoogleApiError(400, "invalid", "Invalid resource id value.")
                if event_id in self._events.get(calendar.id, {}):
                    raise GoogleApiError(
                        409, "duplicate", "The requested identifier already exists."
                    )
                stored = self._store(
                    calendar.id, self._event_new(calendar.id, {**body, "id": event_id})
                )
                result = stored.public()
        record.event_id = event_id
        self._notify(Change(kind="event", calendar_id=calendar.id, cause="api", event_id=event_id))
        return 200, result

    def _events_get(self, record: RecordedRequest, grant: _Grant) -> tuple[int, Any]:
        calendar = self._calendar_for(record, grant)
        with self._lock:
            stored = self._events[calendar.id].get(record.event_id or "")
            if stored is None:
                raise GoogleApiError(404, "notFound", "Not Found")
            # A deleted event stays readable, with status "cancelled".
            return 200, stored.public()

    def _check_if_match(self, record: RecordedRequest, stored: _StoredEvent) -> None:
        expected = record.headers.get("if-match")
        if expected and expected != "*" and expected != stored.etag:
            raise GoogleApiError(
                412,
                "conditionNotMet",
                "Precondition Failed",
                location="If-Match",
                location_type="header",
            )

    def _events_patch(self, record: RecordedRequest, grant: _Grant) -> tuple[int, Any]:
        calendar = self._calendar_for(record, grant)
        send_updates = self._send_updates(record)
        body = record.body if isinstance(record.body, dict) else {}
        event_id = record.event_id or ""
        with self._lock:
            stored = self._events[calendar.id].get(event_id)
            if stored is None:
                raise GoogleApiError(404, "notFound", "Not Found")
            self._check_if_match(record, stored)
            if record.operation == "events.update":
                merged = {**body, "id": event_id}
            else:
                merged = {**stored.resource, **copy.deepcopy(body), "id": event_id}
            if stored.deleted and body.get("status", "") != "cancelled":
                # Google keeps a deleted event's details on the organizer's calendar so that
                # it can be restored: a write to it restores (undeletes) it, guests notified
                # again. Only an explicit "cancelled" keeps it deleted.
                merged["status"] = body.get("status") or "confirmed"
            for key in ("created", "creator", "organizer", "htmlLink", "kind", "etag"):
                merged.pop(key, None)
            event = self._event_new(calendar.id, merged)
            event["created"] = stored.resource["created"]
            if _event_bound(event.get("start")) != _event_bound(stored.resource.get("start")) or (
                _event_bound(event.get("end")) != _event_bound(stored.resource.get("end"))
            ):
                event["sequence"] = int(stored.resource.get("sequence", 0)) + 1
            restored = stored.deleted and event["status"] != "cancelled"
            stored.resource = event
            stored.deleted = event["status"] == "cancelled"
            self._touch(stored)
            if restored:
                self.restored.append((calendar.id, event_id))
            kind = "cancellation" if stored.deleted else "invitation" if restored else "update"
            self._mail_guests(stored, kind, send_updates)
            result = stored.public()
        self._notify(Change(kind="event", calendar_id=calendar.id, cause="api", event_id=event_id))
        return 200, result

    def _events_delete(self, record: RecordedRequest, grant: _Grant) -> tuple[int, Any]:
        calendar = self._calendar_for(record, grant)
        send_updates = self._send_updates(record)
        event_id = record.event_id or ""
        with self._lock:
            stored = self._events[calendar.id].get(event_id)
            if stored is None:
                raise GoogleApiError(404, "notFound", "Not Found")
            if stored.deleted:
                raise GoogleApiError(410, "deleted", "Resource has been deleted")
            self._check_if_match(record, stored)
            stored.deleted = True
            stored.resource["status"] = "cancelled"
            self._touch(stored)
            self._mail_guests(stored, "cancellation", send_updates)
        self._notify(Change(kind="event", calendar_id=calendar.id, cause="api", event_id=event_id))
        return 204, None

    def _events_list(self, record: RecordedRequest, grant: _Grant) -> tuple[int, Any]:
        calendar = self._calendar_for(record, grant)
        query = record.query
        try:
            max_results = int(query.get("maxResults", DEFAULT_MAX_RESULTS))
        except ValueError as exc:
            raise GoogleApiError(400, "invalidParameter", "Invalid value for: maxResults") from exc
        max_results = max(1, min(max_results, MAX_MAX_RESULTS))
        stable = {name: query.get(name) for name in SYNC_TOKEN_STABLE}
        with self._lock:
            page_token = query.get("pageToken")
            if page_token:
                page = self._page_tokens.pop(page_token, None)
                if page is None or page["calendar_id"] != calendar.id:
                    raise GoogleApiError(400, "invalid", "Invalid page token value.")
                return 200, self._page(calendar, page, max_results)
            sync_token = query.get("syncToken")
            if sync_token:
                forbidden = [name for name in SYNC_TOKEN_FORBIDDEN if name in query]
                if forbidden:
                    raise GoogleApiError(
                        400,
                        "invalid",
                        f"Sync token cannot be used with {forbidden[0]}.",
                        location=forbidden[0],
                    )
                state = self._sync_tokens.get(sync_token)
                if (
                    state is None
                    or state["calendar_id"] != calendar.id
                    or state["generation"] != self._sync_generation.get(calendar.id, 0)
                ):
                    raise GoogleApiError(
                        410,
                        "fullSyncRequired",
                        "Sync token is no longer valid, a full sync is required.",
                    )
                if state["stable"] != stable:
                    raise GoogleApiError(
                        400, "invalid", "Parameters must stay the same as in the full sync."
                    )
                changed = sorted(
                    (e for e in self._events[calendar.id].values() if e.change_seq > state["seq"]),
                    key=lambda e: e.change_seq,
                )
                # On the organizer's calendar a deleted event keeps its details, returned
                # only with showDeleted=true (events resource, "status").
                details = _truthy(query.get("showDeleted"))
                items = [
                    e.tombstone() if e.deleted and not details else e.public() for e in changed
                ]
            else:
                show_deleted = _truthy(query.get("showDeleted"))
                time_min = _param_time(query, "timeMin")
                time_max = _param_time(query, "timeMax")
                items = []
                for e in sorted(self._events[calendar.id].values(), key=lambda e: e.change_seq):
                    if e.deleted and not show_deleted:
                        continue
                    start = _event_bound(e.resource.get("start"))
                    end = _event_bound(e.resource.get("end"))
                    if time_min and end and end <= time_min:
                        continue
                    if time_max and start and start >= time_max:
                        continue
                    if query.get("iCalUID") and e.resource.get("iCalUID") != query["iCalUID"]:
                        continue
                    items.append(e.public())
            page = {
                "calendar_id": calendar.id,
                "items": items,
                "seq": self._last_seq,
                "stable": stable,
                "empty_page_pending": self.empty_page_before_last,
            }
            return 200, self._page(calendar, page, max_results)

    def _page(
        self, calendar: FakeCalendar, page: dict[str, Any], max_results: int
    ) -> dict[str, Any]:
        items = page["items"]
        chunk, rest = items[:max_results], items[max_results:]
        body: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": f'"p{page["seq"]}"',
            "summary": calendar.summary,
            "timeZone": calendar.time_zone,
            "updated": rfc3339(_now()),
            "accessRole": calendar.access_role,
            "defaultReminders": [],
            "items": chunk,
        }
        if page.get("empty_page_pending") and not rest:
            # Google may answer an empty page while more follow: the client must go on.
            body["items"] = []
            token = "pg-" + secrets.token_urlsafe(12)
            self._page_tokens[token] = {**page, "items": chunk, "empty_page_pending": False}
            body["nextPageToken"] = token
            return body
        if rest:
            token = "pg-" + secrets.token_urlsafe(12)
            self._page_tokens[token] = {**page, "items": rest}
            body["nextPageToken"] = token
            return body
        sync_token = "st-" + secrets.token_urlsafe(12)
        self._sync_tokens[sync_token] = {
            "calendar_id": calendar.id,
            "seq": page["seq"],
            "generation": self._sync_generation.get(calendar.id, 0),
            "stable": page["stable"],
        }
        body["nextSyncToken"] = sync_token
        return body

    # --- Channels -----------------------------------------------------------------------------

    def _events_watch(self, record: RecordedRequest, grant: _Grant) -> tuple[int, Any]:
        calendar = self._calendar_for(record, grant)
        body = record.body if isinstance(record.body, dict) else {}
        channel_id = body.get("id")
        address = body.get("address") or ""
        if not channel_id or not isinstance(channel_id, str) or len(channel_id) > 64:
            raise GoogleApiError(400, "required", "Channel id is required (at most 64 characters).")
        if body.get("type") not in ("web_hook", "webhook"):
            raise GoogleApiError(400, "invalid", "Unsupported channel type.")
        if not calendar.push_supported:
            raise GoogleApiError(
                400,
                "pushNotSupportedForRequestedResource",
                "Push notifications are not supported by this resource.",
            )
        if not address.startswith("https://") and self.require_https_webhooks:
            raise GoogleApiError(
                400,
                "push.webhookUrlNotHttps",
                "WebHook callback must be HTTPS: " + address,
                domain="push",
            )
        token = body.get("token")
        if token is not None and len(str(token)) > 256:
            raise GoogleApiError(400, "invalid", "Channel token is too long.")
        params = body.get("params") or {}
        try:
            ttl = int(params.get("ttl", DEFAULT_CHANNEL_TTL_SECONDS))
        except (TypeError, ValueError) as exc:
            raise GoogleApiError(400, "invalid", "Invalid ttl value.") from exc
        ttl = max(1, min(ttl, self.channel_ttl_cap_seconds))
        now = _now()
        with self._lock:
            if channel_id in self.channels:
                raise GoogleApiError(400, "channelIdNotUnique", "Channel id not unique")
            resource_id = _b64url(hashlib.sha256(calendar.id.encode()).digest()[:12])
            channel = FakeChannel(
                id=channel_id,
                resource_id=resource_id,
                resource_uri=f"{self.api_endpoint}calendars/{calendar.id}/events?alt=json",
                calendar_id=calendar.id,
                address=address,
                token=token,
                expiration_ms=int((now + dt.timedelta(seconds=ttl)).timestamp() * 1000),
                subject=grant.subject,
                created_at=now,
            )
            self.channels[channel_id] = channel
        self._notify(
            Change(
                kind="channel_created", calendar_id=calendar.id, cause="api", channel_id=channel_id
            )
        )
        response = {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": channel.resource_uri,
            "expiration": str(channel.expiration_ms),
        }
        if token is not None:
            response["token"] = token
        return 200, response

    def _channels_stop(self, record: RecordedRequest, grant: _Grant) -> tuple[int, Any]:
        body = record.body if isinstance(record.body, dict) else {}
        with self._lock:
            channel = self.channels.get(str(body.get("id")))
            if (
                channel is None
                or channel.stopped
                or channel.resource_id != body.get("resourceId")
                or channel.subject != grant.subject
            ):
                raise GoogleApiError(
                    404, "notFound", f"Channel '{body.get('id')}' not found for project"
                )
            channel.stopped = True
            channel.stopped_at = _now()
        self._notify(
            Change(
                kind="channel_stopped",
                calendar_id=channel.calendar_id,
                cause="api",
                channel_id=channel.id,
            )
        )
        return 204, None

    # --- Free/busy and calendar list ----------------------------------------------------------

    def _freebusy(self, record: RecordedRequest, grant: _Grant) -> tuple[int, Any]:
        body = record.body if isinstance(record.body, dict) else {}
        try:
            time_min = parse_rfc3339(str(body["timeMin"]))
            time_max = parse_rfc3339(str(body["timeMax"]))
        except (KeyError, ValueError) as exc:
            raise GoogleApiError(400, "required", "Missing or invalid timeMin/timeMax.") from exc
        if time_max < time_min:
            raise GoogleApiError(400, "timeRangeEmpty", "The specified time range is empty.")
        calendars: dict[str, Any] = {}
        with self._lock:
            for item in body.get("items", []):
                calendar_id = str(item.get("id", ""))
                calendar = self.calendars.get(calendar_id)
                if calendar is None or calendar.owner_subject != grant.subject:
                    calendars[calendar_id] = {
                        "errors": [{"domain": "global", "reason": "notFound"}],
                        "busy": [],
                    }
                    continue
                busy: list[tuple[dt.datetime, dt.datetime]] = []
                for stored in self._events[calendar_id].values():
                    resource = stored.resource
                    if stored.deleted or resource.get("transparency") == "transparent":
                        continue
                    start = _event_bound(resource.get("start"))
                    end = _event_bound(resource.get("end"))
                    if start and end and start < time_max and end > time_min:
                        busy.append((max(start, time_min), min(end, time_max)))
                for start, end in self._busy.get(calendar_id, []):
                    if start < time_max and end > time_min:
                        busy.append((max(start, time_min), min(end, time_max)))
                calendars[calendar_id] = {
                    "busy": [{"start": rfc3339(s), "end": rfc3339(e)} for s, e in sorted(busy)]
                }
        return 200, {
            "kind": "calendar#freeBusy",
            "timeMin": rfc3339(time_min),
            "timeMax": rfc3339(time_max),
            "calendars": calendars,
        }

    def _calendar_list(self, record: RecordedRequest, grant: _Grant) -> tuple[int, Any]:
        try:
            max_results = max(1, min(int(record.query.get("maxResults", 100)), 250))
        except ValueError as exc:
            raise GoogleApiError(400, "invalidParameter", "Invalid value for: maxResults") from exc
        with self._lock:
            owned = [
                c
                for c in self.calendars.values()
                if c.owner_subject == grant.subject and not c.deleted
            ]
            offset = int(record.query.get("pageToken", "0") or 0)
            chunk = owned[offset : offset + max_results]
            items = []
            for calendar in chunk:
                entry: dict[str, Any] = {
                    "kind": "calendar#calendarListEntry",
                    "etag": f'"{abs(hash(calendar.id)) % 10**12}"',
                    "id": calendar.id,
                    "summary": calendar.summary,
                    "timeZone": calendar.time_zone,
                    "accessRole": calendar.access_role,
                }
                if calendar.primary:
                    entry["primary"] = True
                items.append(entry)
            body: dict[str, Any] = {"kind": "calendar#calendarList", "etag": '"l1"', "items": items}
            if offset + max_results < len(owned):
                body["nextPageToken"] = str(offset + max_results)
            else:
                body["nextSyncToken"] = "cl-" + secrets.token_urlsafe(8)
            return 200, body

    # --- OAuth --------------------------------------------------------------------------------

    def consent_set(
        self,
        *,
        subject: str | None = None,
        scopes: list[str] | None = None,
        denied: bool = False,
    ) -> None:
        """Who consents at the authorization endpoint next, to which scopes, or that they refuse."""
        with self._lock:
            if subject is not None:
                self.consent_subject = subject
            self.consent_scopes = scopes
            self.consent_denied = denied

    def _authorize(self, record: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        query = record.query
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != self.client_id or not redirect_uri:
            raise _OAuthError(400, "invalid_request", "Unknown client or missing redirect_uri.")
        if query.get("response_type") != "code":
            raise _OAuthError(400, "unsupported_response_type", "response_type must be code.")
        challenge = query.get("code_challenge")
        if challenge and query.get("code_challenge_method") != "S256":
            raise _OAuthError(400, "invalid_request", "Only S256 code challenges are accepted.")
        state = query.get("state")
        params: dict[str, str] = {}
        with self._lock:
            if self.consent_denied or self.consent_subject is None:
                params["error"] = "access_denied"
            else:
                requested = query.get("scope", "").split()
                granted = (
                    [s for s in requested if s in self.consent_scopes]
                    if self.consent_scopes is not None
                    else requested
                )
                code = "4/fake-" + secrets.token_urlsafe(24)
                self._codes[code] = {
                    "subject": self.consent_subject,
                    "redirect_uri": redirect_uri,
                    "scopes": granted,
                    "challenge": challenge,
                    "offline": query.get("access_type") == "offline",
                    "used": False,
                }
                params["code"] = code
                params["scope"] = " ".join(granted)
        if state is not None:
            params["state"] = state
        separator = "&" if "?" in redirect_uri else "?"
        return 302, None, {"Location": redirect_uri + separator + urlencode(params)}

    def _token(self, record: RecordedRequest) -> dict[str, Any]:
        form = record.body if isinstance(record.body, dict) else {}
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            raise _OAuthError(401, "invalid_client", "The OAuth client was not found.")
        grant_type = form.get("grant_type")
        with self._lock:
            if grant_type == "authorization_code":
                entry = self._codes.get(str(form.get("code")))
                if entry is None or entry["used"]:
                    raise _OAuthError(400, "invalid_grant", "Malformed auth code.")
                entry["used"] = True
                if form.get("redirect_uri") != entry["redirect_uri"]:
                    raise _OAuthError(400, "redirect_uri_mismatch", "Bad Request")
                if entry["challenge"]:
                    verifier = str(form.get("code_verifier") or "")
                    digest = _b64url(hashlib.sha256(verifier.encode("ascii")).digest())
                    if digest != entry["challenge"]:
                        raise _OAuthError(400, "invalid_grant", "Invalid code verifier.")
                grant = _Grant(
                    subject=entry["subject"],
                    scopes=entry["scopes"],
                    refresh_token=(
                        "1//fake-refresh-" + secrets.token_urlsafe(24) if entry["offline"] else None
                    ),
                )
                self._grants.append(grant)
                response: dict[str, Any] = {
                    "access_token": self._access_token_new(grant),
                    "expires_in": ACCESS_TOKEN_LIFETIME,
                    "scope": " ".join(grant.scopes),
                    "token_type": "Bearer",
                }
                if grant.refresh_token:
                    response["refresh_token"] = grant.refresh_token
                if "openid" in grant.scopes:
                    response["id_token"] = self._id_token(grant.subject)
                return response
            if grant_type == "refresh_token":
                refresh = form.get("refresh_token")
                grant_found = next(
                    (g for g in self._grants if g.refresh_token and g.refresh_token == refresh),
                    None,
                )
                if grant_found is None or grant_found.revoked:
                    raise _OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
                return {
                    "access_token": self._access_token_new(grant_found),
                    "expires_in": ACCESS_TOKEN_LIFETIME,
                    "scope": " ".join(grant_found.scopes),
                    "token_type": "Bearer",
                }
        raise _OAuthError(400, "unsupported_grant_type", "Invalid grant_type.")

    def _id_token(self, subject: str) -> str:
        account = self.accounts.get(subject)
        now = int(_now().timestamp())
        header = {"alg": "RS256", "kid": "fake-key", "typ": "JWT"}
        payload = {
            "iss": "https://accounts.google.com",
            "aud": self.client_id,
            "sub": subject,
            "email": account.email if account else "",
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
        }
        return ".".join(
            [
                _b64url(json.dumps(header).encode()),
                _b64url(json.dumps(payload).encode()),
                _b64url(b"not-a-real-signature"),
            ]
        )

    def _revoke(self, record: RecordedRequest) -> dict[str, Any]:
        form = record.body if isinstance(record.body, dict) else {}
        token = form.get("token") or record.query.get("token")
        with self._lock:
            for grant in self._grants:
                if grant.refresh_token == token:
                    grant.revoked = True
                    return {}
            entry = self._access_tokens.get(str(token))
            if entry is not None:
                entry.grant.revoked = True
                return {}
        raise _OAuthError(400, "invalid_token", "Token expired or revoked")

    def grants_revoked(self, *, subject: str) -> bool:
        """Whether every grant of ``subject`` is revoked (after a disconnect, for example)."""
        with self._lock:
            grants = [g for g in self._grants if g.subject == subject]
            return bool(grants) and all(g.revoked for g in grants)

    def iter_requests(self) -> Iterator[RecordedRequest]:
        with self._lock:
            return iter(list(self.requests))


def _safe_bound(value: Any, name: str) -> dt.datetime | None:
    try:
        return _event_bound(value)
    except ValueError as exc:
        raise GoogleApiError(400, "invalid", f"Invalid {name} time.") from exc


def _param_time(query: dict[str, str], name: str) -> dt.datetime | None:
    value = query.get(name)
    if not value:
        return None
    try:
        return parse_rfc3339(value)
    except ValueError as exc:
        raise GoogleApiError(400, "invalidParameter", f"Invalid value for: {name}") from exc


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGoogleCalendar
    protocol_version = "HTTP/1.1"
    server_version = "FakeGoogle/1.0"

    def _serve(self) -> None:
        self.fake.handle(self)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return
