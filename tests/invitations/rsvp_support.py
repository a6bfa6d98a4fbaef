"""What the RSVP tests share: Radicale with one account per organizer, events, a proxy.

- :func:`radicale_accounts` (session): a Radicale server (PyPI) on 127.0.0.1 with an htpasswd
  file that tests add accounts to while it runs (Radicale reads the file on every request),
  so every test gets an organizer of its own, whose calendar home is ``/<email>/``.
- :func:`organizer` (per test): a new account with two calendars ("Personal", empty, and
  "Work") and the settings that point Convoke's CalDAV adapter at it (HTTP Basic, the calendar
  home template, Convoke building REPLYs because Radicale does not schedule).
- :class:`DavProxy`: a real HTTP proxy in front of Radicale that can act between a client's
  read and its write (the organizer edits the event; two PUTs held until both arrive), or
  answer 503 as an unreachable server's gateway would, and that translates La Suite's
  API key + ``X-Forwarded-User`` into Basic authentication.
- :func:`event_body`: a VEVENT the way a CalDAV client stores it (CRLF, no METHOD), with
  times relative to now so the tests never age.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from tests.conftest import free_port
from tests.fakes.radicale import Account, RadicaleAccounts

__all__ = ["Account", "DavProxy", "event_body", "future", "partstats", "rsvp_path", "rsvp_token"]
from tests.scheduling.itip import fold

ORGANIZER_NAME = "Alice Martin"
HOLD_TIMEOUT_SECONDS = 10.0


def point_convoke_at(settings: Any, account: Account, *, url: str | None = None) -> None:
    settings.CALDAV_URL = url or account.server_url
    settings.CALDAV_USERNAME = account.email
    settings.CALDAV_PASSWORD = account.password
    settings.CALDAV_OUTBOUND_API_KEY = ""
    settings.CALDAV_CALENDAR_HOME_TEMPLATE = (url or account.server_url) + "{email}/"
    settings.CALDAV_TIMEOUT_SECONDS = 5.0


@pytest.fixture
def organizer(radicale_accounts: RadicaleAccounts, settings: Any) -> Account:
    account = radicale_accounts.account_new()
    account.calendar_create("Personal")
    account.calendar_create("Work")
    point_convoke_at(settings, account)
    return account


# --- Events ----------------------------------------------------------------------------------


def future(days: int = 30, hour: int = 14) -> dt.datetime:
    """A wall-clock time in Paris ``days`` from today, on the hour."""
    import zoneinfo

    paris = zoneinfo.ZoneInfo("Europe/Paris")
    day = dt.datetime.now(paris).date() + dt.timedelta(days=days)
    return dt.datetime(day.year, day.month, day.day, hour, 0, tzinfo=paris)


def _stamp(value: dt.datetime) -> str:
    return value.strftime("%Y%m%dT%H%M%S")


def event_body(
    *,
    uid: str,
    organizer: str,
    attendees: Iterable[tuple[str, str]],
    start: dt.datetime | None = None,
    hours: int = 1,
    summary: str = "Quarterly planning",
    rrule: str | None = None,
    method: str | None = None,
    sequence: int = 0,
    location: str = "",
    overrides: Iterable[tuple[dt.datetime, Iterable[tuple[str, str]]]] = (),
    status: str = "",
) -> bytes:
    """A VCALENDAR as a CalDAV client stores it (CRLF, folded), times in Europe/Paris."""
    start = start or future()
    end = start + dt.timedelta(hours=hours)
    attendees = list(attendees)
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Convoke tests//RSVP//EN"]
    if method:
        lines.append(f"METHOD:{method}")

    def vevent(
        recurrence_id: dt.datetime | None, people: list[tuple[str, str]], at: dt.datetime
    ) -> list[str]:
        block = [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "DTSTAMP:20261101T090000Z",
            f"DTSTART;TZID=Europe/Paris:{_stamp(at)}",
            f"DTEND;TZID=Europe/Paris:{_stamp(at + (end - start))}",
            f"SEQUENCE:{sequence}",
            f"SUMMARY:{summary}",
        ]
        if recurrence_id is not None:
            block.append(f"RECURRENCE-ID;TZID=Europe/Paris:{_stamp(recurrence_id)}")
        elif rrule:
            block.append(f"RRULE:{rrule}")
        if location:
            block.append(f"LOCATION:{location}")
        if status:
            block.append(f"STATUS:{status}")
        block.append(f"ORGANIZER;CN={ORGANIZER_NAME}:mailto:{organizer}")
        for address, partstat in people:
            block.append(
                f"ATTENDEE;CN=Guest;PARTSTAT={partstat};ROLE=REQ-PARTICIPANT;RSVP=TRUE:"
                f"mailto:{address}"
            )
        block.append("END:VEVENT")
        return block

    lines += vevent(None, attendees, start)
    for moment, people in overrides:
        lines += vevent(moment, list(people), moment)
    lines.append("END:VCALENDAR")
    folded = [part for line in lines for part in fold(line)]
    return ("\r\n".join(folded) + "\r\n").encode("utf-8")


def partstats(data: bytes) -> dict[str | None, dict[str, str]]:
    """RECURRENCE-ID key (None for the master) -> {attendee: PARTSTAT}, read with our parser."""
    from calendars.ical import parse_itip, recurrence_key

    return {
        (recurrence_key(e.recurrence_id) if e.recurrence_id is not None else None): {
            a.address: str(a.partstat) for a in e.attendees
        }
        for e in parse_itip(data).events
    }


# --- A proxy in front of Radicale ------------------------------------------------------------


@dataclass
class DavProxy:
    """An HTTP proxy to ``upstream`` on 127.0.0.1 with hooks between requests.

    ``before_put``: called (once per PUT, in the proxy's thread) before the PUT is forwarded.
    ``hold_puts``: the first ``hold_puts`` PUTs wait until that many have arrived, then go on
    together. ``unavailable``: answer 503 to everything. ``swallow_puts``: answer 204 to a PUT
    without storing anything. With ``api_key`` set, requests must
    carry ``X-Api-Key`` and ``X-Forwarded-User``; the proxy then authenticates upstream as
    that user (``passwords``), like La Suite's CalDAV server trusts its API key.
    """

    upstream: str
    before_put: Callable[[], None] | None = None
    hold_puts: int = 0
    unavailable: bool = False
    swallow_puts: bool = False
    api_key: str = ""
    passwords: dict[str, str] = field(default_factory=dict)
    requests_seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _held: threading.Condition = field(default_factory=threading.Condition)
    _puts_arrived: int = 0

    def start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                proxy.requests_seen.append((self.command, self.path, dict(headers)))
                if proxy.unavailable:
                    self._answer(503, {"Content-Type": "text/plain"}, b"upstream down")
                    return
                if proxy.api_key:
                    user = self.headers.get("X-Forwarded-User", "")
                    key = self.headers.get("X-Api-Key", "")
                    if key != proxy.api_key or user not in proxy.passwords:
                        self._answer(401, {"Content-Type": "text/plain"}, b"bad key")
                        return
                    token = base64.b64encode(f"{user}:{proxy.passwords[user]}".encode()).decode()
                    headers = {
                        k: v
                        for k, v in headers.items()
                        if k.lower() not in ("x-api-key", "x-forwarded-user", "authorization")
                    }
                    headers["Authorization"] = f"Basic {token}"
                if self.command == "PUT" and proxy.swallow_puts:
                    # A broken server: "stored" (204), but it keeps the old version.
                    self._answer(204, {}, b"")
                    return
                if self.command == "PUT":
                    proxy._put_arrives()
                    if proxy.before_put is not None:
                        hook, proxy.before_put = proxy.before_put, None
                        hook()
                answer = requests.request(
                    self.command,
                    proxy.upstream.rstrip("/") + self.path,
                    data=body,
                    headers=headers,
                    timeout=10,
                    allow_redirects=False,
                )
                kept = {
                    k: v
                    for k, v in answer.headers.items()
                    if k.lower()
                    not in ("transfer-encoding", "connection", "content-length", "content-encoding")
                }
                self._answer(answer.status_code, kept, answer.content)

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_PUT = do_DELETE = do_PROPFIND = do_REPORT = do_OPTIONS = _forward
            do_MKCALENDAR = do_HEAD = do_POST = do_PROPPATCH = _forward

        port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{port}/"

    def _put_arrives(self) -> None:
        with self._held:
            self._puts_arrived += 1
            if self._puts_arrived <= self.hold_puts:
                self._held.notify_all()
                deadline = time.monotonic() + HOLD_TIMEOUT_SECONDS
                while self._puts_arrived < self.hold_puts and time.monotonic() < deadline:
                    self._held.wait(timeout=0.05)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def count(self, method: str) -> int:
        return sum(1 for seen in self.requests_seen if seen[0] == method)


@pytest.fixture
def dav_proxy(organizer: Account, settings: Any) -> Iterator[DavProxy]:
    """A proxy in front of the organizer's Radicale, with Convoke's adapter pointed at it."""
    proxy = DavProxy(upstream=organizer.server_url)
    proxy.start()
    point_convoke_at(settings, organizer, url=proxy.url)
    try:
        yield proxy
    finally:
        proxy.stop()


# --- Links ------------------------------------------------------------------------------------


def rsvp_token(
    *,
    uid: str,
    attendee: str,
    organizer: str,
    recurrence_id: str | None = None,
    expires_in: dt.timedelta = dt.timedelta(days=60),
) -> str:
    from django.utils import timezone

    from invitations.tokens import rsvp_token_make

    return rsvp_token_make(
        uid=uid,
        attendee=attendee,
        organizer=organizer,
        recurrence_id=recurrence_id,
        expires_at=timezone.now() + expires_in,
    )


def rsvp_path(token: str, action: str = "accepted") -> str:
    from urllib.parse import urlencode

    return "/rsvp/?" + urlencode({"token": token, "action": action})
