"""Invented iTIP messages for email tests (edges the corpus lacks: dates in the future)."""

from __future__ import annotations

ORGANIZER = "organizer@example.org"
ATTENDEE = "attendee@example.net"


def request(
    *,
    method: str = "REQUEST",
    sequence: int = 0,
    summary: str = "Quarterly planning",
    description: str = "Agenda:\\n1. Budget\\n2. Hiring",
    location: str = "Room 4.2, Rue de la Loi 1, Brussels",
    start: str = "DTSTART;TZID=Europe/Brussels:20300312T140000",
    end: str = "DTEND;TZID=Europe/Brussels:20300312T153000",
    extra: str = "",
    attendee_partstat: str = "NEEDS-ACTION",
    uid: str = "planning-2030@example.org",
) -> bytes:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Example//Tests//EN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"SEQUENCE:{sequence}",
        "DTSTAMP:20300101T120000Z",
        start,
        end,
        f"SUMMARY:{summary}",
        f"DESCRIPTION:{description}",
        f"LOCATION:{location}",
        f"ORGANIZER;CN=Olivia Organizer:mailto:{ORGANIZER}",
        f"ATTENDEE;CN=Arthur Attendee;PARTSTAT={attendee_partstat};RSVP=TRUE:mailto:{ATTENDEE}",
        "ATTENDEE;CN=Bea Guest;PARTSTAT=ACCEPTED:mailto:bea@example.net",
    ]
    if extra:
        lines += extra.strip("\n").split("\n")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")
