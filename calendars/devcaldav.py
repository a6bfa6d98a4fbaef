"""``make run``'s own CalDAV server, so that the whole loop works out of the box.

docs/design.md 1.2: answers are recorded on a CalDAV server. Unless ``CALDAV_URL`` names one
in the environment, ``make run`` starts Radicale (a development dependency, from the lock
file) on ``127.0.0.1:PORT+1`` with its data under ``var/radicale/``:

- one account, ``convoke``, with a password generated into ``var/dev.env`` on the first run
  (``DEV_CALDAV_PASSWORD``); Radicale's rights let it read and write every user's calendars,
  as a service that acts for organizers over HTTP Basic. Radicale does not schedule
  (RFC 6638), so an answer is written into the organizer's copy and Convoke sends her the
  REPLY itself;
- Convoke's processes get ``CALDAV_URL``, ``CALDAV_USERNAME``, ``CALDAV_PASSWORD`` and
  ``CALDAV_CALENDAR_HOME_TEMPLATE`` (a user's calendars live at ``/<email>/``);
- the sample invitation's event is stored in its organizer's calendar
  (``/alice@example.org/calendar/``) before the ``curl`` that posts it is printed. The
  sample (``samples/invitation.ics``) is dated, so ``var/sample-invitation.ics`` is a copy two
  weeks ahead (dated again once it is over): that copy is what the ``curl`` posts.

Like :mod:`calendars.devserver`, this runs before Django is configured and reads no setting.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import icalendar
import requests

SERVICE_ACCOUNT = "convoke"
PASSWORD_NAME = "DEV_CALDAV_PASSWORD"  # noqa: S105 (the name of a variable)
SAMPLE_ORGANIZER = "alice@example.org"
SAMPLE_CALENDAR = "calendar"
SAMPLE_OBJECT = "sample-invitation.ics"
SAMPLE_DAYS_AHEAD = 14
START_TIMEOUT_SECONDS = 30.0
HTTP_TIMEOUT_SECONDS = 10.0

# The service account may read and write every collection; every user their own (RFC 4791
# clients such as Thunderbird can sign in as alice@example.org once given a password).
RIGHTS = f"""\
[service]
user: {SERVICE_ACCOUNT}
collection: .*
permissions: RrWw

[owner]
user: .+
collection: {{user}}(/.*)?
permissions: RrWw

[root]
user: .+
collection:
permissions: R
"""

MKCALENDAR_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    b"<D:set><D:prop><D:displayname>Calendar</D:displayname></D:prop></D:set>"
    b"</C:mkcalendar>"
)


class DevCalDAVError(RuntimeError):
    """The embedded CalDAV server cannot be started or prepared; the message says why."""


def available() -> bool:
    """Whether Radicale is installed (``make install`` installs the development group)."""
    return importlib.util.find_spec("radicale") is not None


def port_for(web_port: int) -> int:
    return web_port + 1


def base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/"


def password_ensure(dev_env: Path) -> str:
    """The service account's password from ``dev_env``, generated and appended (the file
    keeps mode 0600) when missing."""
    for line in dev_env.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == PASSWORD_NAME:
            return value.strip()
    password = secrets.token_urlsafe(24)
    with dev_env.open("a") as handle:
        handle.write(f"{PASSWORD_NAME}={password}\n")
    return password


def convoke_environment(port: int, password: str) -> dict[str, str]:
    """What Convoke's processes need to use the embedded server."""
    url = base_url(port)
    return {
        "CALDAV_URL": url,
        "CALDAV_USERNAME": SERVICE_ACCOUNT,
        "CALDAV_PASSWORD": password,
        "CALDAV_OUTBOUND_API_KEY": "",
        "CALDAV_CALENDAR_HOME_TEMPLATE": url + "{email}/",
    }


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def radicale_command(
    *, port: int, users: Path, folder: Path, rights_file: Path | None = None
) -> list[str]:
    """The command that runs Radicale on ``127.0.0.1:port`` with plain-text htpasswd
    ``users``, its collections under ``folder``, and the rights of ``rights_file`` (each user
    their own collections when None)."""
    rights = (
        ["--rights-type", "from_file", "--rights-file", str(rights_file)]
        if rights_file is not None
        else ["--rights-type", "owner_only"]
    )
    return [
        sys.executable,
        "-m",
        "radicale",
        "--config",
        "",
        "--server-hosts",
        f"127.0.0.1:{port}",
        "--auth-type",
        "htpasswd",
        "--auth-htpasswd-filename",
        str(users),
        "--auth-htpasswd-encryption",
        "plain",
        *rights,
        "--storage-filesystem-folder",
        str(folder / "collections"),
        "--logging-level",
        "warning",
    ]


def start(folder: Path, port: int, password: str) -> subprocess.Popen[bytes]:
    """Start Radicale on ``127.0.0.1:port`` with its files in ``folder``; returns once it
    answers. Raises :class:`DevCalDAVError`."""
    if not available():
        raise DevCalDAVError(
            "Radicale is not installed (it is a development dependency: run make install), "
            "or set CALDAV_URL to a CalDAV server of your own"
        )
    if not _port_free(port):
        raise DevCalDAVError(
            f"port {port} (PORT+1) is taken: set PORT to another value, or CALDAV_URL to a "
            "CalDAV server of your own"
        )
    folder.mkdir(parents=True, exist_ok=True)
    users, rights = folder / "users", folder / "rights"
    users.write_text(f"{SERVICE_ACCOUNT}:{password}\n", encoding="utf-8")
    users.chmod(0o600)
    rights.write_text(RIGHTS, encoding="utf-8")
    command = radicale_command(port=port, users=users, folder=folder, rights_file=rights)
    with (folder / "radicale.log").open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DevCalDAVError(f"Radicale exited with status {process.returncode}")
        try:
            requests.options(base_url(port), timeout=1)
            return process
        except requests.ConnectionError:
            time.sleep(0.1)
    process.terminate()
    raise DevCalDAVError(f"Radicale did not answer within {START_TIMEOUT_SECONDS:.0f} s")


def _sample_dated(template: Path, copy: Path, now: dt.datetime) -> tuple[bytes, bool]:
    """The sample invitation, dated in the future: ``copy`` as it is while it is not over,
    else ``template`` moved to ``SAMPLE_DAYS_AHEAD`` days from ``now`` (same wall-clock time
    and zone) and written to ``copy``. Returns (bytes, whether ``copy`` was written)."""
    if copy.is_file():
        end = icalendar.Calendar.from_ical(copy.read_bytes()).events[0].end
        if isinstance(end, dt.datetime) and end.astimezone(dt.UTC) > now:
            return copy.read_bytes(), False
    calendar = icalendar.Calendar.from_ical(template.read_bytes())
    event = calendar.events[0]
    start, length = event.start, event.duration
    day = (now + dt.timedelta(days=SAMPLE_DAYS_AHEAD)).date()
    moved = start.replace(year=day.year, month=day.month, day=day.day)
    event.DTSTART = moved
    event.DTEND = moved + length
    event.DTSTAMP = now.replace(microsecond=0)
    data = bytes(calendar.to_ical())
    copy.write_bytes(data)
    return data, True


def sample_store(*, port: int, password: str, template: Path, copy: Path) -> None:
    """Store the sample invitation's event (without METHOD, RFC 4791 section 4.1) in its
    organizer's calendar, unless the same version is there already (so that an answer
    recorded on it survives a restart). Raises :class:`DevCalDAVError`."""
    data, dated_again = _sample_dated(template, copy, dt.datetime.now(dt.UTC))
    calendar = icalendar.Calendar.from_ical(data)
    del calendar["METHOD"]
    home = f"{base_url(port)}{SAMPLE_ORGANIZER}/"
    collection = f"{home}{SAMPLE_CALENDAR}/"
    auth = (SERVICE_ACCOUNT, password)
    try:
        with requests.Session() as session:
            session.auth = auth
            if session.get(collection + SAMPLE_OBJECT, timeout=HTTP_TIMEOUT_SECONDS).ok:
                if not dated_again:
                    return
            else:
                session.request("MKCOL", home, timeout=HTTP_TIMEOUT_SECONDS)
                session.request(
                    "MKCALENDAR",
                    collection,
                    data=MKCALENDAR_BODY,
                    headers={"Content-Type": "application/xml"},
                    timeout=HTTP_TIMEOUT_SECONDS,
                )
            stored = session.put(
                collection + SAMPLE_OBJECT,
                data=calendar.to_ical(),
                headers={"Content-Type": "text/calendar; charset=utf-8"},
                timeout=HTTP_TIMEOUT_SECONDS,
            )
            stored.raise_for_status()
    except requests.RequestException as exc:
        raise DevCalDAVError(f"the sample event could not be stored ({exc})") from exc
