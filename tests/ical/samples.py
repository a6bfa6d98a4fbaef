"""Invented iCalendar snippets for the edges the corpus lacks."""

from __future__ import annotations


def vcalendar(body: str, *, method: str | None = "REQUEST", extra: str = "") -> bytes:
    """A VCALENDAR around ``body`` with CRLF line ends (the bytes a CalDAV server sends)."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Convoke tests//EN"]
    if method:
        lines.append(f"METHOD:{method}")
    if extra:
        lines.append(extra)
    lines += body.strip("\n").split("\n")
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")
