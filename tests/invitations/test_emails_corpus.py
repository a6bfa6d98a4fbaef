"""Every corpus message that parses, rendered in every kind and language (issue 4, tests).

Each email is parsed back with Python's email package; its attachment is read by icalendar
(through calendars.ical) and by vobject, an independent parser; the start shown in the text
is the event's start converted to the recipient's zone.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import zoneinfo
from email.message import EmailMessage

import pytest
import vobject

from calendars.ical import ICalendarError, ITipMessage, parse_itip
from invitations.emails import email_build
from invitations.rendering.dates import date_text

from .corpus import corpus_bodies

# A zone per language, with a half-hour offset and both hemispheres among them.
ZONES = {
    "en": "Asia/Kolkata",
    "fr": "Europe/Paris",
    "de": "America/Sao_Paulo",
    "nl": "Pacific/Auckland",
}


def _parseable() -> list[tuple[str, bytes]]:
    found = []
    for name, body in corpus_bodies():
        try:
            parse_itip(body)
        except ICalendarError:
            continue
        found.append((name, body))
    return found


PARSEABLE = _parseable()


def _address(value: str | None, fallback: str) -> str:
    if value and value.count("@") == 1 and " " not in value and ";" not in value:
        return value
    return fallback


def _people(message: ITipMessage) -> tuple[str, str]:
    event = message.primary
    organizer = _address(event.organizer.address if event.organizer else None, "org@example.org")
    attendee = next(
        (a.address for a in event.attendees if _address(a.address, "") and a.address != organizer),
        "guest@example.net",
    )
    return organizer, attendee


def _check_mime(mail_bytes: bytes, method: str) -> tuple[EmailMessage, str]:
    message = email.message_from_bytes(mail_bytes, policy=email.policy.default)
    assert message.get_content_type() == "multipart/mixed"
    alternative, calendar = list(message.iter_parts())
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert calendar.get_content_type() == "text/calendar"
    assert calendar.get_param("method") == method
    assert calendar.get_filename() == "invite.ics"
    subject = message["Subject"]
    assert subject and "\n" not in subject and "\r" not in subject
    # Python's header folding may double a space next to an encoded word; compare unfolded.
    assert len(" ".join(subject.split())) <= 200
    plain = alternative.get_body(("plain",)).get_content()
    html = alternative.get_body(("html",)).get_content()
    assert plain.strip() and "<script" not in html.lower()
    return message, calendar.get_content()


def _shown_start(message: ITipMessage, zone: str, language: str) -> str | None:
    """The text the plain part must contain for the start, computed independently."""
    event = message.primary
    start = event.start if event.start is not None else event.recurrence_id
    if start is None:
        return None
    if not isinstance(start, dt.datetime):
        return date_text(start, language)
    if start.tzinfo is not None:
        start = start.astimezone(zoneinfo.ZoneInfo(zone))
    return f"{date_text(start.date(), language)}, {start:%H:%M}"


@pytest.mark.parametrize(("name", "body"), PARSEABLE, ids=[n for n, _ in PARSEABLE])
def test_corpus_message_renders_in_every_kind_and_language(name: str, body: bytes) -> None:
    parsed = parse_itip(body)
    organizer, attendee = _people(parsed)
    runs = [
        ("REQUEST", organizer, attendee, None),
        ("REQUEST", organizer, attendee, body),  # an update, the earlier version known
        ("CANCEL", organizer, attendee, None),
        ("REPLY", attendee, organizer, None),
    ]
    for method, sender, recipient, previous in runs:
        calendars = set()
        for language, zone in ZONES.items():
            mail = email_build(
                body=body,
                method=method,
                sender=sender,
                recipient=recipient,
                message_id=f"<{method}.{language}@corpus.test>",
                language=language,
                time_zone=zone,
                previous_body=previous,
            )
            message, calendar = _check_mime(mail.message().as_bytes(), method)
            assert message["Message-ID"] == f"<{method}.{language}@corpus.test>"
            plain = message.get_body(("plain",)).get_content()
            expected = _shown_start(parsed, zone, language)
            if expected is not None:
                assert expected in plain, (expected, plain[:400])
            calendars.add(calendar)
        # The attachment does not depend on the reader's language.
        (calendar,) = calendars
        again = parse_itip(calendar.encode("utf-8"))
        assert again.events == parsed.events
        assert again.method is not None and again.method.value == method
        independent = vobject.readOne(calendar)
        assert [str(v.uid.value) for v in independent.vevent_list] == [e.uid for e in parsed.events]


def test_corpus_covers_many_producers_when_rendered() -> None:
    assert len(PARSEABLE) >= 130
