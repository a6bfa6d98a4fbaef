"""Invitations shaped like what sabre/dav's HTTP-callback iMIP plugin posts.

One REQUEST as La Suite's sabre/dav 4.7 server sends it (docs/messages-and-caldav.md) for an
event created in a calendar client: METHOD, PRODID and CALSCALE set by the server, the
client's VTIMEZONE, one VEVENT with a description, a location, a video link, the organizer
as CHAIR and a handful of attendees, CRLF line ends, folded at 75 octets. Each call gives a
distinct message (its own UID, DTSTAMP and time), so none is folded as a duplicate.
"""

from __future__ import annotations

import datetime as dt

ORGANIZER = "alice.martin@example.org"
ATTENDEES = (
    ("Bob Durand", "bob.durand@example.net"),
    ("Chloé Petit", "chloe.petit@example.com"),
    ("Dmitri Novak", "dmitri.novak@example.org"),
    ("Eva Schmidt", "eva.schmidt@example.de"),
)

_VTIMEZONE = [
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Paris",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19700329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19701025T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
]


def _fold(line: str) -> list[str]:
    data = line.encode("utf-8")
    parts: list[str] = []
    limit = 75
    while len(data) > limit:
        cut = limit
        while cut > 0 and (data[cut] & 0xC0) == 0x80:
            cut -= 1
        parts.append(data[:cut].decode("utf-8"))
        data = data[cut:]
        limit = 74
    parts.append(data.decode("utf-8"))
    return [parts[0]] + [" " + rest for rest in parts[1:]]


def sabre_request(index: int, *, recipient: int = 0, salt: int = 0) -> tuple[bytes, str, str]:
    """The ``index``-th distinct REQUEST, for attendee number ``recipient``: (body, sender,
    recipient address)."""
    stamp = dt.datetime(2030, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=salt, seconds=index)
    start = dt.datetime(2030, 3, 4, 9, 0) + dt.timedelta(hours=index % 2000)
    end = start + dt.timedelta(minutes=45)
    fmt = "%Y%m%dT%H%M%S"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Sabre//Sabre VObject 4.5.6//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:REQUEST",
        *_VTIMEZONE,
        "BEGIN:VEVENT",
        f"UID:{salt:04d}-{index:08d}-5d4c6843-9300-4f91-8d88-6094d4b0b840",
        f"DTSTAMP:{stamp.strftime(fmt)}Z",
        "CREATED:20291220T101500Z",
        "LAST-MODIFIED:20291220T101500Z",
        "SEQUENCE:0",
        f"SUMMARY:Quarterly roadmap review #{index}",
        f"DTSTART;TZID=Europe/Paris:{start.strftime(fmt)}",
        f"DTEND;TZID=Europe/Paris:{end.strftime(fmt)}",
        "LOCATION:Salle Lovelace\\, 3e étage",
        "DESCRIPTION:Agenda:\\n1. Results of the quarter\\n2. Roadmap for the next "
        "two quarters\\n3. Questions\\n\\nJoin: https://visio.example.org/abc-defg-hij",
        "URL:https://visio.example.org/abc-defg-hij",
        "TRANSP:OPAQUE",
        "STATUS:CONFIRMED",
        f"ORGANIZER;CN=Alice Martin:mailto:{ORGANIZER}",
        f"ATTENDEE;CN=Alice Martin;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:{ORGANIZER}",
    ]
    for name, address in ATTENDEES:
        lines.append(
            f"ATTENDEE;CN={name};CUTYPE=INDIVIDUAL;PARTSTAT=NEEDS-ACTION;"
            f"ROLE=REQ-PARTICIPANT;RSVP=TRUE:mailto:{address}"
        )
    lines += [
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "TRIGGER:-PT15M",
        "DESCRIPTION:Reminder",
        "END:VALARM",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    folded = [part for line in lines for part in _fold(line)]
    body = ("\r\n".join(folded) + "\r\n").encode("utf-8")
    return body, ORGANIZER, ATTENDEES[recipient % len(ATTENDEES)][1]
