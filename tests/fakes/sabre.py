"""A CalDAV server that behaves like La Suite Calendars' sabre/dav where Convoke depends on it.

docs/messages-and-caldav.md records what a real sabre/dav 4.7 server running La Suite's own
plugins does. :class:`SabreLike` reproduces the part of it Convoke's invitations and RSVP
depend on, as a real HTTP server on 127.0.0.1 in front of Radicale, which stores the
objects, answers PROPFIND and REPORT, keeps ETags and refuses a stale ``If-Match`` with 412:

- **Authentication as La Suite's**: ``X-Api-Key`` plus ``X-Forwarded-User: <email>``; HTTP
  Basic, a wrong key or no user is 401. A user seen for the first time gets a principal and
  an empty calendar home (La Suite's ``AutoCreatePrincipalBackend``); :meth:`user_add` makes a
  user of the server with a calendar, as signing in to La Suite Calendars does.
- **Per-user calendars**: Radicale's ``/<email>/<calendar>/``, each user's own only.
- ``OPTIONS`` announces ``calendar-auto-schedule`` (RFC 6638 section 2); a calendar object
  carrying METHOD is refused with 415.
- **Scheduling** (RFC 6638 section 3.2) on every PUT and DELETE of a calendar object, by the
  contract's rules:

  - the organizer writes her copy: REQUEST to every attendee when the event is new or
    changed significantly (times, recurrence, status, location, summary); otherwise REQUEST
    only to an attendee added (with the event's current SEQUENCE) and CANCEL to one removed
    (listing only them, SEQUENCE not bumped); **nothing at all when only PARTSTATs changed**,
    whoever wrote them into her copy;
  - the organizer deletes her copy: CANCEL to every attendee, the server bumping SEQUENCE;
  - an attendee writes their own copy with another PARTSTAT: REPLY to the organizer, listing
    only that attendee with PARTSTAT and CN (RECURRENCE-ID for one occurrence); deleting it:
    REPLY DECLINED;
  - every message is delivered locally to the users of the server (an attendee's copy
    created, replaced or cancelled; the organizer's copy updated with a REPLY's PARTSTAT) and,
    for every recipient, local or not, queued as the POST La Suite's HTTP-callback iMIP
    plugin sends (:attr:`SabreLike.callbacks`; :meth:`callbacks_post` hands them to Convoke's
    callback endpoint through Django's test client, since the test database lives in the
    test's thread);
  - after the organizer's write sent messages, her stored object gets ``SCHEDULE-STATUS`` on
    those attendees (1.2 delivered locally, 1.1 sent on), so that PUT's answer carries no
    ETag (the server rewrote what it stores).

- ``before_put``: a hook run once before the next PUT by ``before_put_user`` is stored, to
  put someone else's write between a client's read and its PUT.

Not reproduced (Convoke does not depend on it, or the tests cannot tell): the URL layout
``/calendars/<email>/<calendar>/`` and ``/principals/<email>`` (Radicale's layout is used;
Convoke discovers homes through the principal); Schedule-Tag and ``If-Schedule-Tag-Match``;
the scheduling inbox and outbox collections; SCHEDULE-AGENT=CLIENT and SCHEDULE-FORCE-SEND;
the CANCEL of the whole series that the real server sends when one occurrence is cancelled
by a ``STATUS:CANCELLED`` override; EXDATEs added to an attendee's copy for occurrences they
are not invited to; the 10-second timeout on callbacks; ACLs, sharing, free-busy.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from copy import deepcopy
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import icalendar
import requests
from caldav.lib import error as dav_error
from requests.structures import CaseInsensitiveDict

from tests.conftest import free_port
from tests.fakes.radicale import Account, RadicaleAccounts

PRODID = "-//Sabre//Sabre VObject 4.6.0//EN"
SIGNIFICANT = ("DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "STATUS")
SIGNIFICANT += ("LOCATION", "SUMMARY")
HOP_BY_HOP = ("transfer-encoding", "connection", "content-length", "content-encoding")
CREDENTIALS = ("host", "x-api-key", "x-forwarded-user", "authorization")
DEFAULT_CALENDAR = "Calendar"


@dataclass(frozen=True)
class Callback:
    """One POST of La Suite's HTTP-callback iMIP plugin (the older header family)."""

    method: str
    sender: str
    recipient: str
    body: bytes

    def headers(self, key: str) -> dict[str, str]:
        return {
            "X-Api-Key": key,
            "X-CalDAV-Sender": f"mailto:{self.sender}",
            "X-CalDAV-Recipient": f"mailto:{self.recipient}",
            "X-CalDAV-Method": self.method,
        }


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


# --- iCalendar helpers (icalendar, not Convoke's own parser) ------------------------------


def _address(value: Any) -> str:
    text = str(value).strip()
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text.lower()


def _listed(component: Any, name: str) -> list[Any]:
    value = component.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _events(calendar: Any) -> list[Any]:
    return [c for c in calendar.subcomponents if c.name == "VEVENT"]


def _master(calendar: Any) -> Any | None:
    return next((c for c in _events(calendar) if "RECURRENCE-ID" not in c), None)


def _instance(component: Any) -> str:
    """``master``, or the RECURRENCE-ID as one comparable text (UTC for an instant)."""
    if "RECURRENCE-ID" not in component:
        return "master"
    value = component["RECURRENCE-ID"].dt
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return value.isoformat()


def _organizer(calendar: Any) -> str | None:
    for component in _events(calendar):
        if "ORGANIZER" in component:
            return _address(component["ORGANIZER"])
    return None


def _attendance(calendar: Any, organizer: str) -> dict[str, set[str]]:
    """address -> the instances that list it (the organizer herself left out)."""
    found: dict[str, set[str]] = {}
    for component in _events(calendar):
        for prop in _listed(component, "ATTENDEE"):
            address = _address(prop)
            if address != organizer:
                found.setdefault(address, set()).add(_instance(component))
    return found


def _partstats(calendar: Any, address: str) -> dict[str, str]:
    found = {}
    for component in _events(calendar):
        for prop in _listed(component, "ATTENDEE"):
            if _address(prop) == address:
                found[_instance(component)] = str(prop.params.get("PARTSTAT", "NEEDS-ACTION"))
    return found


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "|".join(sorted(_text(v) for v in value))
    params = ";".join(f"{k}={v}" for k, v in sorted(value.params.items()))
    return f"{params}:{value.to_ical().decode()}"


def _significant(calendar: Any) -> dict[str, tuple[str, ...]]:
    return {
        _instance(c): tuple(_text(c.get(name)) for name in SIGNIFICANT) for c in _events(calendar)
    }


def _sequence(calendar: Any) -> int:
    master = _master(calendar) or _events(calendar)[0]
    return int(master.get("SEQUENCE", 0))


def _unscheduled(component: Any) -> Any:
    """A copy without the SCHEDULE-* parameters a server keeps for itself."""
    copy = deepcopy(component)
    for name in ("ATTENDEE", "ORGANIZER"):
        for prop in _listed(copy, name):
            for param in ("SCHEDULE-STATUS", "SCHEDULE-FORCE-SEND", "SCHEDULE-AGENT"):
                prop.params.pop(param, None)
    return copy


def _message(method: str | None, source: Any, components: list[Any]) -> icalendar.Calendar:
    message = icalendar.Calendar()
    message.add("VERSION", "2.0")
    message.add("PRODID", PRODID)
    message.add("CALSCALE", "GREGORIAN")
    if method:
        message.add("METHOD", method)
    for zone in source.subcomponents:
        if zone.name == "VTIMEZONE":
            message.add_component(deepcopy(zone))
    for component in components:
        message.add_component(component)
    return message


def _stamped(component: Any) -> Any:
    component.pop("DTSTAMP", None)
    component.add("DTSTAMP", dt.datetime.now(dt.UTC).replace(microsecond=0))
    return component


def _request(calendar: Any, address: str) -> icalendar.Calendar:
    """The REQUEST for one attendee: the instances that list them."""
    components = [
        _stamped(_unscheduled(c))
        for c in _events(calendar)
        if any(_address(p) == address for p in _listed(c, "ATTENDEE"))
    ]
    return _message("REQUEST", calendar, components)


def _cancel(calendar: Any, address: str, sequence: int) -> icalendar.Calendar:
    """The CANCEL for one attendee, as vobject builds it: UID, SEQUENCE, the master's times
    and summary, the organizer and only that attendee."""
    master = _master(calendar) or _events(calendar)[0]
    event = icalendar.Event()
    event.add("UID", str(master["UID"]))
    event.add("SEQUENCE", sequence)
    _stamped(event)
    for name in ("DTSTART", "DTEND", "DURATION", "SUMMARY", "ORGANIZER"):
        if name in master:
            event[name] = deepcopy(master[name])
    attendee = next(
        (p for c in _events(calendar) for p in _listed(c, "ATTENDEE") if _address(p) == address),
        None,
    )
    line = icalendar.vCalAddress(f"mailto:{address}")
    if attendee is not None and attendee.params.get("CN"):
        line.params["CN"] = attendee.params["CN"]
    event.add("ATTENDEE", line)
    event.add("STATUS", "CANCELLED")
    return _message("CANCEL", calendar, [_unscheduled(event)])


def _reply(calendar: Any, address: str, instances: list[str]) -> icalendar.Calendar:
    """The REPLY of an attendee, as vobject builds it: per instance UID, SEQUENCE, DTSTAMP,
    times, SUMMARY, RECURRENCE-ID, ORGANIZER and the attendee with PARTSTAT and CN only."""
    components = []
    for component in _events(calendar):
        if _instance(component) not in instances:
            continue
        event = icalendar.Event()
        event.add("UID", str(component["UID"]))
        event.add("SEQUENCE", int(component.get("SEQUENCE", 0)))
        _stamped(event)
        for name in ("DTSTART", "DTEND", "DURATION", "SUMMARY", "RECURRENCE-ID"):
            if name in component:
                event[name] = deepcopy(component[name])
        organizer = component["ORGANIZER"]
        line = icalendar.vCalAddress(str(organizer))
        if organizer.params.get("CN"):
            line.params["CN"] = organizer.params["CN"]
        event.add("ORGANIZER", line)
        mine = next(p for p in _listed(component, "ATTENDEE") if _address(p) == address)
        line = icalendar.vCalAddress(f"mailto:{address}")
        line.params["PARTSTAT"] = str(mine.params.get("PARTSTAT", "NEEDS-ACTION"))
        if mine.params.get("CN"):
            line.params["CN"] = mine.params["CN"]
        event.add("ATTENDEE", line)
        components.append(event)
    return _message("REPLY", calendar, components)


def _override(master: Any, recurrence_id: Any) -> Any:
    """A new override of ``master`` at ``recurrence_id`` (a RECURRENCE-ID property)."""
    override = icalendar.Event()
    for name, value in master.items():
        if name.upper() not in ("RRULE", "RDATE", "EXDATE", "DTSTART", "DTEND", "DURATION"):
            override[name] = deepcopy(value)
    start = master["DTSTART"].dt
    override["RECURRENCE-ID"] = deepcopy(recurrence_id)
    override.add("DTSTART", recurrence_id.dt)
    if "DTEND" in master:
        override.add("DTEND", recurrence_id.dt + (master["DTEND"].dt - start))
    elif "DURATION" in master:
        override["DURATION"] = deepcopy(master["DURATION"])
    return override


# --- The server ---------------------------------------------------------------------------


@dataclass
class SabreLike:
    radicale: RadicaleAccounts
    callback_key: str
    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    url: str = ""
    callbacks: list[Callback] = field(default_factory=list)
    requests_seen: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, user
    before_put: Callable[[], None] | None = None
    before_put_user: str = ""
    users: dict[str, Account] = field(default_factory=dict)  # email -> Radicale account
    # Radicale logins are "<prefix>.<email>": each server of the session has users of its own.
    _prefix: str = field(default_factory=lambda: f"s{uuid.uuid4().hex[:8]}")
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _server: ThreadingHTTPServer | None = None

    # --- Users ---

    def user_add(self, email: str | None = None) -> str:
        """A user of the server (signed in once to La Suite Calendars): a principal and a
        calendar named ``Calendar``. Returns the address."""
        address = (email or f"user-{uuid.uuid4().hex[:10]}@example.org").lower()
        account = self._account(address)
        if not account.calendars:
            account.calendar_create(DEFAULT_CALENDAR)
        return address

    def _account(self, email: str) -> Account:
        key = email.lower()
        with self._lock:
            if key not in self.users:
                self.users[key] = self.radicale.account_new(f"{self._prefix}.{key}")
            return self.users[key]

    @staticmethod
    def _email(account: Account) -> str:
        return account.email.split(".", 1)[1]

    def calendar_urls(self, email: str) -> list[str]:
        """The URLs of ``email``'s calendars on this server."""
        calendars = self._account(email).calendars.values()
        return [self.url.rstrip("/") + urlsplit(url).path for url in calendars]

    def is_user(self, email: str) -> bool:
        return email.lower() in self.users

    # --- What tests do as users, through the server (so scheduling happens) ---

    def _as(self, email: str) -> dict[str, str]:
        return {"X-Api-Key": self.api_key, "X-Forwarded-User": email}

    def event_store(self, email: str, body: bytes) -> str:
        """``email`` creates an event in their calendar; returns its path."""
        account = self._account(self.user_add(email))
        path = urlsplit(account.calendars[DEFAULT_CALENDAR]).path + f"{uuid.uuid4().hex}.ics"
        response = requests.put(
            self.url.rstrip("/") + path,
            data=body,
            headers={**self._as(email), "Content-Type": "text/calendar", "If-None-Match": "*"},
            timeout=10,
        )
        response.raise_for_status()
        return path

    def event_edit(self, email: str, uid: str, edit: Callable[[bytes], bytes]) -> None:
        """``email``'s calendar client changes their copy of ``uid`` (GET, then PUT with
        If-Match)."""
        path, _ = self._copy(self._account(email), uid)
        headers = self._as(email)
        current = requests.get(self.url.rstrip("/") + path, headers=headers, timeout=10)
        current.raise_for_status()
        response = requests.put(
            self.url.rstrip("/") + path,
            data=edit(current.content),
            headers={
                **headers,
                "Content-Type": "text/calendar",
                "If-Match": current.headers["ETag"],
            },
            timeout=10,
        )
        response.raise_for_status()

    def event_delete(self, email: str, uid: str) -> None:
        path, _ = self._copy(self._account(email), uid)
        response = requests.delete(self.url.rstrip("/") + path, headers=self._as(email), timeout=10)
        response.raise_for_status()

    def stored(self, email: str, uid: str) -> bytes | None:
        """``email``'s copy of ``uid`` as the server stores it, or None."""
        found = self._find(self._account(email), uid)
        return found[1] if found is not None else None

    def callbacks_take(self) -> list[Callback]:
        with self._lock:
            taken, self.callbacks[:] = list(self.callbacks), []
        return taken

    def callbacks_post(self, client: Any) -> list[Callback]:
        """POST every queued callback to Convoke's endpoint with Django's test ``client``;
        returns them (each was answered 202, or this fails)."""
        from tests.scheduling.itip import CALLBACK_URL

        taken = self.callbacks_take()
        for callback in taken:
            response = client.post(
                CALLBACK_URL,
                data=callback.body,
                content_type="text/calendar",
                headers=callback.headers(self.callback_key),
            )
            assert response.status_code == 202, (response.status_code, response.content[:200])
        return taken

    # --- HTTP ---

    def start(self) -> None:
        sabre = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = sabre.handle(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_PUT = do_DELETE = do_PROPFIND = do_REPORT = do_OPTIONS = _any
            do_MKCALENDAR = do_HEAD = do_POST = do_PROPPATCH = do_MKCOL = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def count(self, method: str, user: str | None = None) -> int:
        return sum(
            1
            for seen in self.requests_seen
            if seen[0] == method and (user is None or seen[2] == user.lower())
        )

    def handle(self, method: str, path: str, raw_headers: dict[str, str], body: bytes) -> Answer:
        headers = CaseInsensitiveDict(raw_headers)
        user = headers.get("X-Forwarded-User", "").strip().lower()
        key = headers.get("X-Api-Key", "")
        if not user or not secrets.compare_digest(key.encode(), self.api_key.encode()):
            return Answer(401, {"Content-Type": "text/plain"}, b"API key and user required")
        self.requests_seen.append((method, path, user))
        account = self._account(user)  # La Suite creates the principal on first sight
        if method == "OPTIONS":
            answer = self._forward(account, method, path, headers, body)
            features = answer.headers.get("DAV", "")
            answer.headers["DAV"] = ", ".join(filter(None, [features, "calendar-auto-schedule"]))
            return answer
        if method == "PUT" and path.endswith(".ics"):
            return self._put(account, path, headers, body)
        if method == "DELETE" and path.endswith(".ics"):
            return self._delete(account, path, headers)
        return self._forward(account, method, path, headers, body)

    def _forward(
        self,
        account: Account,
        method: str,
        path: str,
        headers: CaseInsensitiveDict[str],
        body: bytes = b"",
    ) -> Answer:
        sent = {k: v for k, v in headers.items() if k.lower() not in CREDENTIALS}
        token = base64.b64encode(f"{account.email}:{account.password}".encode()).decode()
        sent["Authorization"] = f"Basic {token}"
        answer = requests.request(
            method,
            self.radicale.url.rstrip("/") + path,
            data=body,
            headers=sent,
            timeout=10,
            allow_redirects=False,
        )
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
        return Answer(answer.status_code, kept, answer.content)

    def _put(
        self, account: Account, path: str, headers: CaseInsensitiveDict[str], body: bytes
    ) -> Answer:
        try:
            new = icalendar.Calendar.from_ical(body)
        except ValueError:
            new = None
        if new is not None and "METHOD" in new:
            return Answer(415, {"Content-Type": "text/plain"}, b"METHOD is not allowed here")
        if self.before_put is not None and (
            not self.before_put_user or self.before_put_user.lower() == self._email(account)
        ):
            hook, self.before_put = self.before_put, None
            hook()
        with self._lock:
            old = self._get(account, path)
            answer = self._forward(account, "PUT", path, headers, body)
            if answer.status not in (200, 201, 204) or new is None:
                return answer
            if self._scheduled_write(account, path, old, new):
                answer.headers.pop("ETag", None)
                answer.headers.pop("Etag", None)
            return answer

    def _delete(self, account: Account, path: str, headers: CaseInsensitiveDict[str]) -> Answer:
        with self._lock:
            old = self._get(account, path)
            answer = self._forward(account, "DELETE", path, headers)
            if answer.status in (200, 204) and old is not None:
                self._scheduled_delete(account, old)
            return answer

    # --- Storage, as a user, straight to Radicale ---

    def _get(self, account: Account, path: str) -> icalendar.Calendar | None:
        response = requests.get(
            self.radicale.url.rstrip("/") + path, auth=account_auth(account), timeout=10
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return icalendar.Calendar.from_ical(response.content)

    def _store(self, account: Account, path: str, calendar: icalendar.Calendar) -> None:
        response = requests.put(
            self.radicale.url.rstrip("/") + path,
            data=calendar.to_ical(),
            headers={"Content-Type": "text/calendar"},
            auth=account_auth(account),
            timeout=10,
        )
        response.raise_for_status()

    def _find(self, account: Account, uid: str) -> tuple[str, bytes] | None:
        for calendar in account.client().principal().calendars():
            with contextlib.suppress(dav_error.NotFoundError):
                found = calendar.get_event_by_uid(uid)
                return urlsplit(str(found.url)).path, bytes(found.data.encode())
        return None

    def _copy(self, account: Account, uid: str) -> tuple[str, bytes]:
        found = self._find(account, uid)
        if found is None:
            raise LookupError(f"{self._email(account)} has no copy of {uid}")
        return found

    # --- Scheduling ---

    def _scheduled_write(
        self,
        account: Account,
        path: str,
        old: icalendar.Calendar | None,
        new: icalendar.Calendar,
    ) -> bool:
        """The messages a write causes; True when the stored object was rewritten."""
        organizer = _organizer(new)
        if organizer is None:
            return False
        if organizer == self._email(account):
            return self._organizer_wrote(account, path, old, new, organizer)
        if self._email(account) in _attendance(new, organizer):
            self._attendee_answered(account, old, new, organizer)
        return False

    def _organizer_wrote(
        self,
        account: Account,
        path: str,
        old: icalendar.Calendar | None,
        new: icalendar.Calendar,
        organizer: str,
    ) -> bool:
        now_listed = _attendance(new, organizer)
        was_listed = _attendance(old, organizer) if old is not None else {}
        significant = old is None or _significant(old) != _significant(new)
        sent: dict[str, str] = {}
        for address, instances in now_listed.items():
            if significant or was_listed.get(address) != instances:
                sent[address] = self._send(organizer, address, _request(new, address))
        assert old is not None or not was_listed
        for address in was_listed.keys() - now_listed.keys():
            assert old is not None
            self._send(organizer, address, _cancel(old, address, _sequence(new)))
        if not sent:
            return False
        for component in _events(new):
            for prop in _listed(component, "ATTENDEE"):
                if _address(prop) in sent:
                    prop.params["SCHEDULE-STATUS"] = sent[_address(prop)]
        self._store(account, path, new)
        return True

    def _scheduled_delete(self, account: Account, old: icalendar.Calendar) -> None:
        organizer = _organizer(old)
        if organizer is None:
            return
        if organizer == self._email(account):
            for address in _attendance(old, organizer):
                self._send(organizer, address, _cancel(old, address, _sequence(old) + 1))
            return
        if self._email(account) in _attendance(old, organizer):
            declined = deepcopy(old)
            for component in _events(declined):
                for prop in _listed(component, "ATTENDEE"):
                    if _address(prop) == self._email(account):
                        prop.params["PARTSTAT"] = "DECLINED"
            me = self._email(account)
            self._send(me, organizer, _reply(declined, me, sorted(_partstats(declined, me))))

    def _attendee_answered(
        self,
        account: Account,
        old: icalendar.Calendar | None,
        new: icalendar.Calendar,
        organizer: str,
    ) -> None:
        me = self._email(account)
        before = _partstats(old, me) if old is not None else {}
        changed = [
            instance
            for instance, partstat in _partstats(new, me).items()
            if partstat != before.get(instance, before.get("master", "NEEDS-ACTION"))
        ]
        if changed:
            self._send(me, organizer, _reply(new, me, changed))

    def _send(self, sender: str, recipient: str, message: icalendar.Calendar) -> str:
        """Deliver locally to a user of the server, queue the callback for every recipient;
        returns the SCHEDULE-STATUS the organizer's copy gets."""
        method = str(message["METHOD"])
        local = self.is_user(recipient)
        if local:
            self._deliver(self._account(recipient), method, message)
        self.callbacks.append(
            Callback(method=method, sender=sender, recipient=recipient, body=message.to_ical())
        )
        return "1.2" if local else "1.1"

    def _deliver(self, account: Account, method: str, message: icalendar.Calendar) -> None:
        """The server's own delivery into a user's calendar (RFC 6638 section 3.2.2)."""
        uid = str(_events(message)[0]["UID"])
        found = self._find(account, uid)
        current = icalendar.Calendar.from_ical(found[1]) if found is not None else None
        if method == "REQUEST":
            copy = _message(None, message, [deepcopy(c) for c in _events(message)])
        elif method == "CANCEL" and current is not None:
            copy = current
            for component in _events(copy):
                component.pop("STATUS", None)
                component.add("STATUS", "CANCELLED")
        elif method == "REPLY" and current is not None:
            copy = current
            self._reply_apply(copy, message)
        else:
            return
        if found is not None:
            path = found[0]
        else:
            if not account.calendars:
                account.calendar_create(DEFAULT_CALENDAR)
            home = urlsplit(next(iter(account.calendars.values()))).path
            path = f"{home}{uuid.uuid4().hex}.ics"
        self._store(account, path, copy)

    @staticmethod
    def _reply_apply(copy: icalendar.Calendar, reply: icalendar.Calendar) -> None:
        master = _master(copy)
        for answered in _events(reply):
            [line] = _listed(answered, "ATTENDEE")
            address = _address(line)
            target = next((c for c in _events(copy) if _instance(c) == _instance(answered)), None)
            if target is None and master is not None and "RECURRENCE-ID" in answered:
                target = _override(master, answered["RECURRENCE-ID"])
                copy.add_component(target)
            if target is None:
                continue
            for prop in _listed(target, "ATTENDEE"):
                if _address(prop) == address:
                    prop.params["PARTSTAT"] = str(line.params.get("PARTSTAT", "NEEDS-ACTION"))
                    prop.params["SCHEDULE-STATUS"] = "2.0"


def account_auth(account: Account) -> tuple[str, str]:
    return (account.email, account.password)


@contextlib.contextmanager
def sabre_running(radicale: RadicaleAccounts, *, callback_key: str) -> Iterator[SabreLike]:
    server = SabreLike(radicale=radicale, callback_key=callback_key)
    server.start()
    try:
        yield server
    finally:
        server.stop()
