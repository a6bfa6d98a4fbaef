"""The CalDAV adapter (RFC 4791), over the ``caldav`` library.

What bookings need today: store a booking's event (an object with ORGANIZER and ATTENDEE,
built by :func:`calendars.ical.booking_event_build`) in the organizer's calendar collection,
replace it, and delete it. A server that schedules (RFC 6638; sabre/dav with La Suite's
plugins) emits the iTIP REQUEST or CANCEL to the attendee by itself on these writes.

Objects are found by UID with a ``calendar-query`` REPORT (RFC 4791 section 7.8), never by a
guessed URL, because a server may store an object under another name than the one a client
chose. A replacement carries ``If-Match`` with the ETag just read, so a change made meanwhile
(for example the server merging the attendee's REPLY) is not overwritten: the adapter reads
again and retries once, then raises :class:`CalDAVPreconditionFailed`.

Authentication, from settings (only :mod:`calendars.settings` reads the environment):

- ``CALDAV_OUTBOUND_API_KEY`` set: La Suite's server, which trusts an API key header plus
  ``X-Forwarded-User: <the calendar owner's email>``;
- otherwise HTTP Basic with ``CALDAV_USERNAME`` / ``CALDAV_PASSWORD`` (Radicale, Nextcloud).

What the server does by itself is asked, never configured: a server that schedules (RFC 6638)
announces ``calendar-auto-schedule`` in the DAV header of OPTIONS (section 2), and
:func:`server_schedules` reads it. Such a server sends the iTIP messages of the organizer's
writes (a booking's REQUEST and CANCEL), and the REPLY when an attendee who is one of its
users changes their own copy; it sends nothing when someone writes a PARTSTAT into the
organizer's copy (docs/messages-and-caldav.md). :func:`acts_for_users` says whether the
authentication lets Convoke act as any user (La Suite's API key does; HTTP Basic is one
account).

Extending this module: add functions in the same shape — take the collection URL and
the acting user's email, open a client with :func:`client_for`, map library errors with
:func:`_translated` — so every CalDAV call keeps one place for auth, timeouts and errors.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

from caldav.calendarobjectresource import Event as DAVEvent
from caldav.collection import Calendar as DAVCalendar
from caldav.collection import CalendarSet as DAVCalendarSet
from caldav.davclient import DAVClient
from caldav.lib import error as dav_error
from caldav.lib.http_sync import requests as dav_http
from django.conf import settings
from django.core.cache import cache

from calendars.providers import ProviderError, ProviderNotConfigured, TransientProviderError

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-Api-Key"
USER_HEADER = "X-Forwarded-User"
AUTO_SCHEDULE = "calendar-auto-schedule"
# How long what the server announced is believed (a server is not rebuilt every minute).
SCHEDULING_KNOWN_SECONDS = 600


class CalDAVError(ProviderError):
    """The CalDAV server refused or failed a request."""

    reason = "caldav_error"


class CalDAVUnavailable(CalDAVError, TransientProviderError):
    """No answer, a timeout, 429 or 5xx: worth trying again later."""

    reason = "caldav_unavailable"


class CalDAVRefused(CalDAVError):
    """401/403 (credentials or rights), 415 (METHOD in a stored object) or another 4xx."""

    reason = "caldav_refused"


class CalDAVNotFound(CalDAVError):
    """The calendar collection (or the object) does not exist."""

    reason = "caldav_not_found"


class CalDAVPreconditionFailed(CalDAVError):
    """412 twice in a row: the object keeps changing under us."""

    reason = "caldav_precondition_failed"


@dataclass(frozen=True)
class StoredObject:
    """Where the server keeps an object, and its ETag when the server returned one."""

    url: str
    etag: str | None
    created: bool


def client_for(*, user_email: str, url: str | None = None) -> DAVClient:
    """A client authenticated as configured, acting for ``user_email``."""
    base = url or settings.CALDAV_URL
    if not base:
        raise ProviderNotConfigured("CALDAV_URL is not set")
    common = {
        "url": base,
        "timeout": settings.CALDAV_TIMEOUT_SECONDS,
        "enable_rfc6764": False,
    }
    if settings.CALDAV_OUTBOUND_API_KEY:
        return DAVClient(
            headers={API_KEY_HEADER: settings.CALDAV_OUTBOUND_API_KEY, USER_HEADER: user_email},
            **common,  # type: ignore[arg-type]
        )
    if settings.CALDAV_USERNAME:
        return DAVClient(
            username=settings.CALDAV_USERNAME,
            password=settings.CALDAV_PASSWORD,
            auth_type="basic",
            **common,  # type: ignore[arg-type]
        )
    raise ProviderNotConfigured(
        "set CALDAV_OUTBOUND_API_KEY, or CALDAV_USERNAME and CALDAV_PASSWORD"
    )


def acts_for_users() -> bool:
    """Whether the configured authentication lets Convoke act as any user of the server, and
    so read and write an attendee's own calendar: La Suite's API key with
    ``X-Forwarded-User`` does; HTTP Basic is the one account it names."""
    return bool(settings.CALDAV_URL and settings.CALDAV_OUTBOUND_API_KEY)


def server_schedules(*, user_email: str) -> bool:
    """Whether the CalDAV server schedules by itself: it announces ``calendar-auto-schedule``
    in the DAV header of its OPTIONS answer (RFC 6638 section 2). Asked as ``user_email``,
    then believed for :data:`SCHEDULING_KNOWN_SECONDS` (per server address)."""
    key = "caldav:auto-schedule:" + hashlib.sha256(str(settings.CALDAV_URL).encode()).hexdigest()
    known = cache.get(key)
    if known is not None:
        return bool(known)
    with _translated("options"):
        client = client_for(user_email=user_email)
        try:
            response = client.options(str(client.url))
        except dav_error.NotFoundError:
            response = None
        status = response.status if response is not None else 404
        if (status >= 500 and status != 501) or status == 429:
            raise dav_error.DAVError(reason="OPTIONS failed", status=status)
        # A server that does not answer OPTIONS (404, 405, 501) announces nothing.
        header = str(response.headers.get("DAV", "")) if response is not None else ""
        features = {feature.strip().lower() for feature in header.split(",")}
    schedules = AUTO_SCHEDULE in features
    cache.set(key, schedules, SCHEDULING_KNOWN_SECONDS)
    logger.info("caldav server scheduling announced=%s", schedules)
    return schedules


@contextlib.contextmanager
def _translated(operation: str) -> Iterator[None]:
    """Turn the library's errors into ours (the message never holds an address or a URL)."""
    try:
        yield
    except dav_error.NotFoundError as exc:
        raise CalDAVNotFound(f"CalDAV {operation}: not found") from exc
    except dav_error.RateLimitError as exc:
        raise CalDAVUnavailable(f"CalDAV {operation}: rate limited") from exc
    except dav_error.AuthorizationError as exc:
        raise CalDAVRefused(
            f"CalDAV {operation}: refused ({exc.status or 'unauthorised'})", reason="caldav_auth"
        ) from exc
    except (dav_error.ETagMismatchError, dav_error.ScheduleTagMismatchError) as exc:
        raise CalDAVPreconditionFailed(f"CalDAV {operation}: precondition failed") from exc
    except dav_error.DAVError as exc:
        status = exc.status or 0
        if status >= 500 or status == 429:
            raise CalDAVUnavailable(f"CalDAV {operation}: server error {status}") from exc
        raise CalDAVRefused(f"CalDAV {operation}: refused ({status or 'error'})") from exc
    except (dav_http.exceptions.RequestException, OSError) as exc:
        raise CalDAVUnavailable(
            f"CalDAV {operation}: no answer ({type(exc).__name__})", reason="caldav_connection"
        ) from exc


def _find(calendar: DAVCalendar, uid: str) -> DAVEvent | None:
    try:
        found = calendar.get_event_by_uid(uid)
    except dav_error.NotFoundError:
        return None
    return found  # type: ignore[return-value]


def event_put(*, calendar_url: str, user_email: str, uid: str, body: bytes) -> StoredObject:
    """Create the object with this UID in the collection, or replace it (``If-Match``).

    ``body`` must not contain METHOD (servers refuse it with 415, RFC 4791 section 4.1).
    """
    if b"\nMETHOD:" in body or body.startswith(b"METHOD:"):
        raise ValueError("a stored calendar object must not carry METHOD")
    with _translated("put"):
        client = client_for(user_email=user_email)
        calendar = client.calendar(url=calendar_url)
        for attempt in (1, 2):
            existing = _find(calendar, uid)
            try:
                if existing is None:
                    obj = DAVEvent(client=client, parent=calendar)
                    obj.save(raw_data=body, no_overwrite=True)
                    return StoredObject(url=str(obj.url), etag=obj.etag, created=True)
                existing.save(raw_data=body, precondition="etag")
                return StoredObject(url=str(existing.url), etag=existing.etag, created=False)
            except (
                dav_error.ETagMismatchError,
                dav_error.ScheduleTagMismatchError,
                dav_error.ConsistencyError,
            ):
                if attempt == 2:
                    raise
                logger.info("caldav put raced with another change; reading again")
    raise AssertionError("unreachable")  # pragma: no cover


def event_delete(*, calendar_url: str, user_email: str, uid: str) -> bool:
    """Delete the object with this UID. False when it was not there (already deleted)."""
    with _translated("delete"):
        client = client_for(user_email=user_email)
        calendar = client.calendar(url=calendar_url)
        existing = _find(calendar, uid)
        if existing is None:
            return False
        existing.delete()  # a 404 here means someone deleted it meanwhile: done too
        return True


# --- Attendee answers (RSVP, docs/design.md 1.2) ----------------------------------------------
# The organizer's event is found by UID among *all* their calendars (the collection is not
# known from an invitation), changed by a function of its bytes, and PUT back with If-Match.

# How many times a change is re-read and re-applied after 412 before giving up.
MODIFY_ATTEMPTS = 4


@dataclass(frozen=True)
class FoundEvent:
    """A stored calendar object, exactly as the server sent it."""

    url: str
    calendar_url: str
    etag: str | None
    data: bytes


@dataclass(frozen=True)
class ModifyResult:
    """``before``: what was read; ``after``: what the server stores once the PUT is done
    (read back), or ``before`` again when ``change`` had nothing to do."""

    before: FoundEvent
    after: FoundEvent
    changed: bool
    attempts: int


def _home_url(user_email: str) -> str | None:
    """The calendar home from ``CALDAV_CALENDAR_HOME_TEMPLATE``; the client then talks to that
    address, so the home may be on another host than ``CALDAV_URL``."""
    template = settings.CALDAV_CALENDAR_HOME_TEMPLATE
    if not template:
        return None
    return template.replace("{email}", quote(user_email, safe="@"))


def _calendars(client: DAVClient, user_email: str) -> list[DAVCalendar]:
    """The user's calendar collections (RFC 4791 section 6.2.1).

    ``CALDAV_CALENDAR_HOME_TEMPLATE`` names the calendar home directly, for servers where
    the service account cannot discover other users' homes; otherwise the home comes from
    the principal of the authenticated user (with La Suite's ``X-Forwarded-User``, the user
    the request acts for).
    """
    home = _home_url(user_email)
    if home is not None:
        return list(DAVCalendarSet(client=client, url=home).get_calendars())  # type: ignore[arg-type]
    principal = client.principal()
    return list(principal.calendar_home_set.get_calendars())


def _raw(obj: DAVEvent) -> bytes:
    data = obj.raw_data if obj.raw_data is not None else obj.data
    return data.encode("utf-8") if isinstance(data, str) else bytes(data or b"")


def _located(client: DAVClient, user_email: str, uid: str) -> tuple[DAVEvent, str] | None:
    """The object with this UID and its calendar's URL, with a strong ETag, or None."""
    for calendar in _calendars(client, user_email):
        found = _find(calendar, uid)
        if found is None:
            continue
        etag = found.etag
        if not etag or etag.startswith("W/") or found.raw_data is None:
            found.load()  # a GET returns the bytes and the ETag the REPORT left out
        return found, str(calendar.url)
    return None


def _found(obj: DAVEvent, calendar_url: str) -> FoundEvent:
    return FoundEvent(url=str(obj.url), calendar_url=calendar_url, etag=obj.etag, data=_raw(obj))


def event_find(*, user_email: str, uid: str) -> FoundEvent | None:
    """The event with this UID in any of the user's calendars (a ``calendar-query`` REPORT
    per calendar, RFC 4791 section 7.8), or None. Changes nothing on the server."""
    with _translated("find"):
        client = client_for(user_email=user_email, url=_home_url(user_email))
        located = _located(client, user_email, uid)
        return _found(*located) if located is not None else None


def event_modify(
    *,
    user_email: str,
    uid: str,
    change: Callable[[bytes], bytes | None],
    attempts: int = MODIFY_ATTEMPTS,
) -> ModifyResult:
    """Apply ``change`` to the stored event with this UID and PUT the result back.

    ``change`` gets the stored bytes and returns the new bytes, or None when there is
    nothing to change (then nothing is written). The PUT carries ``If-Match`` with the ETag
    of what ``change`` saw; on 412 (someone else wrote meanwhile, RFC 4791 section 5.3.4)
    the event is read again and ``change`` applied to the new version, up to ``attempts``
    times, then :class:`CalDAVPreconditionFailed`. After the PUT the event is read back
    (the server may rewrite what it stores; its PUT answer then carries no ETag), and
    ``after`` is what the server holds. Exceptions ``change`` raises pass through untouched.
    Raises :class:`CalDAVNotFound` when no calendar of the user holds the UID.
    """
    with _translated("modify"):
        client = client_for(user_email=user_email, url=_home_url(user_email))
        for attempt in range(1, attempts + 1):
            located = _located(client, user_email, uid)
            if located is None:
                raise CalDAVNotFound("CalDAV modify: no event with this UID")
            obj, calendar_url = located
            before = _found(obj, calendar_url)
            if not before.etag or before.etag.startswith("W/"):
                raise CalDAVRefused(
                    "CalDAV modify: the server gives no strong ETag, so a safe update is "
                    "impossible",
                    reason="caldav_no_etag",
                )
            new = change(before.data)
            if new is None:
                return ModifyResult(before=before, after=before, changed=False, attempts=attempt)
            if b"\nMETHOD:" in new or new.startswith(b"METHOD:"):
                raise ValueError("a stored calendar object must not carry METHOD")
            try:
                obj.save(raw_data=new, precondition="etag")
            except (dav_error.ETagMismatchError, dav_error.ScheduleTagMismatchError):
                logger.info("caldav modify raced with another change attempt=%d", attempt)
                continue
            stored = DAVEvent(client=client, url=obj.url, parent=obj.parent)
            stored.load()
            after = _found(stored, calendar_url)
            return ModifyResult(before=before, after=after, changed=True, attempts=attempt)
    raise CalDAVPreconditionFailed(
        f"CalDAV modify: the event changed under us {attempts} times in a row"
    )
