"""A real CalDAV server for tests: Radicale (from PyPI) on 127.0.0.1.

:func:`radicale_server` is a session fixture: it writes an htpasswd file (plain passwords), starts
``python -m radicale`` with a fresh storage folder, waits until it answers, and stops it at
the end. Import it into a ``conftest.py`` to use it::

    from tests.fakes.radicale import radicale_server  # noqa: F401

:class:`RadicaleServer` creates calendar collections (``MKCALENDAR``) and reads stored
objects back over HTTP, so tests check what a client of the server would see.

:func:`radicale_accounts` is another session server, whose htpasswd file tests add accounts
to while it runs (Radicale reads the file on every request), so every test gets users of its
own (:class:`Account`), whose calendar home is ``/<email>/``.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from caldav.calendarobjectresource import Event as DAVEvent
from caldav.davclient import DAVClient

from calendars.devcaldav import radicale_command
from tests.conftest import free_port

START_TIMEOUT_SECONDS = 20.0

MKCALENDAR_BODY = """<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:set><D:prop><D:displayname>{name}</D:displayname></D:prop></D:set>
</C:mkcalendar>"""


@dataclass
class RadicaleServer:
    url: str  # base URL, ending with "/"
    username: str
    password: str
    process: subprocess.Popen[bytes]

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)

    def calendar_create(self, name: str = "Bookings") -> str:
        """A new calendar collection of the user; returns its URL (ending with "/")."""
        url = f"{self.url}{self.username}/{uuid.uuid4().hex}/"
        response = requests.request(
            "MKCALENDAR",
            url,
            data=MKCALENDAR_BODY.format(name=name).encode(),
            headers={"Content-Type": "application/xml"},
            auth=self.auth,
            timeout=10,
        )
        response.raise_for_status()
        return url

    def objects(self, calendar_url: str) -> dict[str, bytes]:
        """Every calendar object of a collection: href -> iCalendar bytes (PROPFIND + GET)."""
        response = requests.request(
            "PROPFIND",
            calendar_url,
            headers={"Depth": "1", "Content-Type": "application/xml"},
            data=b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:getetag/>'
            b"</D:prop></D:propfind>",
            auth=self.auth,
            timeout=10,
        )
        response.raise_for_status()
        from xml.etree import ElementTree

        tree = ElementTree.fromstring(response.content)  # noqa: S314 (our own test server)
        hrefs = [
            element.text or ""
            for element in tree.iter("{DAV:}href")
            if (element.text or "").endswith(".ics")
        ]
        base = self.url.split("/", 3)
        origin = f"{base[0]}//{base[2]}"
        found: dict[str, bytes] = {}
        for href in hrefs:
            item = requests.get(origin + href, auth=self.auth, timeout=10)
            item.raise_for_status()
            found[href] = item.content
        return found


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Radicale exited with status {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"Radicale did not answer within {START_TIMEOUT_SECONDS} s")


@contextlib.contextmanager
def radicale_running(folder: Path, htpasswd: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run ``python -m radicale`` on a free 127.0.0.1 port with plain-text htpasswd users,
    owner-only rights and its collections under ``folder``; yield (base URL, process) once it
    answers, and stop it afterwards."""
    port = free_port()
    command = radicale_command(port=port, users=htpasswd, folder=folder)
    log = (folder / "radicale.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(url, process)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="session")
def radicale_server() -> Iterator[RadicaleServer]:
    folder = Path(tempfile.mkdtemp(prefix="convoke-radicale-"))
    username = "organizer"
    password = secrets.token_urlsafe(16)
    htpasswd = folder / "users"
    htpasswd.write_text(f"{username}:{password}\n", encoding="utf-8")
    with radicale_running(folder, htpasswd) as (url, process):
        yield RadicaleServer(url=url, username=username, password=password, process=process)


# --- Radicale with accounts ------------------------------------------------------------------


@dataclass
class RadicaleAccounts:
    url: str
    htpasswd: Path
    process: subprocess.Popen[bytes]
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def account_new(self, email: str | None = None) -> Account:
        email = email or f"org-{uuid.uuid4().hex[:10]}@example.org"
        password = secrets.token_urlsafe(12)
        with self._lock, self.htpasswd.open("a", encoding="utf-8") as handle:
            handle.write(f"{email}:{password}\n")
        return Account(server_url=self.url, email=email, password=password)


@dataclass
class Account:
    server_url: str
    email: str
    password: str
    calendars: dict[str, str] = field(default_factory=dict)  # name -> collection URL

    @property
    def home(self) -> str:
        return f"{self.server_url}{quote(self.email, safe='@')}/"

    def client(self) -> DAVClient:
        return DAVClient(
            url=self.server_url,
            username=self.email,
            password=self.password,
            auth_type="basic",
            enable_rfc6764=False,
            timeout=10,
        )

    def calendar_create(self, name: str) -> str:
        made = self.client().principal().calendar_home_set.make_calendar(name=name)
        self.calendars[name] = str(made.url)
        return str(made.url)

    def event_create(self, body: bytes, calendar: str = "Work") -> str:
        """Store ``body`` with the caldav library; returns the object's URL."""
        client = self.client()
        event = DAVEvent(client=client, parent=client.calendar(url=self.calendars[calendar]))
        event.save(raw_data=body, no_overwrite=True)
        return str(event.url)

    def stored(self, uid: str, calendar: str = "Work") -> tuple[str, bytes]:
        """(ETag, bytes) of the object with this UID, read with a calendar-query REPORT."""
        found = self.client().calendar(url=self.calendars[calendar]).get_event_by_uid(uid)
        raw = found.raw_data
        assert raw is not None and found.etag
        return found.etag, bytes(raw)

    def replace(self, uid: str, edit: Callable[[bytes], bytes], calendar: str = "Work") -> None:
        """The organizer's client changes the event (an unconditional PUT of new bytes)."""
        found = self.client().calendar(url=self.calendars[calendar]).get_event_by_uid(uid)
        assert found.raw_data is not None
        found.save(raw_data=edit(bytes(found.raw_data)), precondition="etag")

    def delete(self, uid: str, calendar: str = "Work") -> None:
        self.client().calendar(url=self.calendars[calendar]).get_event_by_uid(uid).delete()


@pytest.fixture(scope="session")
def radicale_accounts() -> Iterator[RadicaleAccounts]:
    folder = Path(tempfile.mkdtemp(prefix="convoke-rsvp-radicale-"))
    htpasswd = folder / "users"
    htpasswd.write_text("", encoding="utf-8")
    with radicale_running(folder, htpasswd) as (url, process):
        yield RadicaleAccounts(url=url, htpasswd=htpasswd, process=process)
