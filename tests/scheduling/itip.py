"""Invented iTIP bodies shaped like what sabre/dav's callback posts, and a poster for them.

Real captured data comes from ``../shared/corpus``; these cover the edges it lacks (a body
for an exact sender/recipient pair, a REPLY, a huge attendee list, a folded mailto).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.test import Client

from tests.settings import TEST_INBOUND_API_KEY

CALLBACK_URL = "/api/v1.0/caldav-scheduling-callback/"
ORGANIZER = "alice@example.org"
ATTENDEE = "bob@example.net"


def fold(line: str) -> list[str]:
    """RFC 5545 section 3.1: at most 75 octets per line, continuation lines start with a space."""
    data = line.encode("utf-8")
    lines: list[str] = []
    limit = 75
    while len(data) > limit:
        cut = limit
        while cut > 0 and (data[cut] & 0xC0) == 0x80:  # never split a UTF-8 sequence
            cut -= 1
        lines.append(data[:cut].decode("utf-8"))
        data = data[cut:]
        limit = 74  # the leading space counts
    lines.append(data.decode("utf-8"))
    return [lines[0]] + [" " + rest for rest in lines[1:]]


def itip_body(
    *,
    method: str | None = "REQUEST",
    uid: str = "event-0001@dav.example.org",
    organizer: str | None = ORGANIZER,
    attendees: Iterable[tuple[str, str]] = ((ATTENDEE, "NEEDS-ACTION"),),
    sequence: int = 0,
    dtstamp: str = "20261120T090000Z",
    summary: str = "Project kick-off",
    recurrence_id: str | None = None,
    extra: Iterable[str] = (),
) -> bytes:
    """A VCALENDAR with one VEVENT, CRLF line ends, folded at 75 octets like sabre/dav."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Sabre//Sabre VObject 4.5.6//EN"]
    lines.append("CALSCALE:GREGORIAN")
    if method:
        lines.append(f"METHOD:{method}")
    lines += [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{dtstamp}",
        "DTSTART;TZID=Europe/Paris:20261215T140000",
        "DTEND;TZID=Europe/Paris:20261215T150000",
        f"SEQUENCE:{sequence}",
        f"SUMMARY:{summary}",
    ]
    if recurrence_id:
        lines.append(f"RECURRENCE-ID;TZID=Europe/Paris:{recurrence_id}")
    if organizer:
        lines.append(f"ORGANIZER;CN=Alice Martin:mailto:{organizer}")
    for address, partstat in attendees:
        lines.append(f"ATTENDEE;CN=Guest;PARTSTAT={partstat};ROLE=REQ-PARTICIPANT:mailto:{address}")
    lines += list(extra)
    lines += ["END:VEVENT", "END:VCALENDAR"]
    folded = [part for line in lines for part in fold(line)]
    return ("\r\n".join(folded) + "\r\n").encode("utf-8")


def callback_headers(
    *,
    method: str = "REQUEST",
    sender: str = ORGANIZER,
    recipient: str = ATTENDEE,
    key: str | None = TEST_INBOUND_API_KEY,
    is_mailbox: str | None = "false",
    legacy: bool = False,
) -> dict[str, str]:
    prefix = "X-CalDAV-" if legacy else "X-LS-"
    headers = {
        f"{prefix}Sender": f"mailto:{sender}",
        f"{prefix}Recipient": f"mailto:{recipient}",
        f"{prefix}Method": method,
    }
    if key is not None:
        headers["X-Api-Key" if legacy else "X-LS-Api-Key"] = key
    if is_mailbox is not None and not legacy:
        headers["X-LS-Is-Mailbox"] = is_mailbox
    return headers


def post_callback(
    client: Client,
    body: bytes,
    *,
    content_type: str = "text/calendar",
    headers: dict[str, str] | None = None,
    **header_options: Any,
) -> Any:
    return client.post(
        CALLBACK_URL,
        data=body,
        content_type=content_type,
        headers=headers if headers is not None else callback_headers(**header_options),
    )
