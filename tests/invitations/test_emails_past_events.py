"""Issue 13, finding 5: an invitation to an event already over carries no RSVP links.

Every link a REQUEST email carries is built by one function (``email_context`` calls
``rsvp_links`` for every kind of REQUEST: first invitation, update, one occurrence's
message), and the RSVP page refuses an answer once the event's (or the occurrence's) last end
has passed. Each case here is rendered as a first invitation and as an update, in every
language: "over" means no link anywhere in the email and the sentence that says so; "not over"
means the three links and no such sentence. An open-ended series is never over.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import html
from typing import Any

import pytest
from django.utils import timezone

from calendars.translations import SUPPORTED_LANGUAGES, translate
from invitations.emails import email_build
from invitations.rsvp_checks import RsvpEventOver, event_checked

from .emails_samples import ATTENDEE, ORGANIZER, request

DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _date(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%d")


def _timed(start: dt.datetime, hours: float = 1, extra: str = "", **options: Any) -> bytes:
    return request(
        start=f"DTSTART:{_utc(start)}",
        end=f"DTEND:{_utc(start + dt.timedelta(hours=hours))}",
        extra=extra,
        **options,
    )


def _one_occurrence(start: dt.datetime) -> bytes:
    """The message a scheduling server sends someone invited to one occurrence only: that
    occurrence (RECURRENCE-ID), without the series' master."""
    return _timed(start, extra=f"RECURRENCE-ID:{_utc(start)}")


def _now() -> dt.datetime:
    return timezone.now().replace(microsecond=0)


# Each case: (name, body). Built when the test runs, so "yesterday" stays yesterday.
OVER = {
    "single event that ended an hour ago": lambda: _timed(_now() - dt.timedelta(hours=2)),
    "all-day event that was yesterday": lambda: request(
        start=f"DTSTART;VALUE=DATE:{_date(_now() - 2 * DAY)}",
        end=f"DTEND;VALUE=DATE:{_date(_now() - DAY)}",
    ),
    "series whose COUNT ended last week": lambda: _timed(
        _now() - 6 * WEEK, extra="RRULE:FREQ=WEEKLY;COUNT=5"
    ),
    "series whose UNTIL is past": lambda: _timed(
        _now() - 6 * WEEK, extra=f"RRULE:FREQ=WEEKLY;UNTIL={_utc(_now() - 2 * WEEK)}"
    ),
    "one occurrence, over, of a series that goes on": lambda: _one_occurrence(_now() - WEEK),
}
NOT_OVER = {
    "open-ended series that began a year ago": lambda: _timed(
        _now() - 52 * WEEK, extra="RRULE:FREQ=WEEKLY"
    ),
    "open-ended daily series that began ten years ago": lambda: _timed(
        _now() - 3650 * DAY, extra="RRULE:FREQ=DAILY;INTERVAL=3"
    ),
    "series begun, its last occurrence ahead": lambda: _timed(
        _now() - 3 * WEEK, extra="RRULE:FREQ=WEEKLY;COUNT=6"
    ),
    "series whose rule is over but an RDATE is ahead": lambda: _timed(
        _now() - 6 * WEEK,
        extra=f"RRULE:FREQ=WEEKLY;COUNT=3\r\nRDATE:{_utc(_now() + WEEK)}",
    ),
    "event in progress (ends in an hour)": lambda: _timed(_now() - dt.timedelta(hours=1), 2),
    "all-day event today": lambda: request(
        start=f"DTSTART;VALUE=DATE:{_date(_now())}",
        end=f"DTEND;VALUE=DATE:{_date(_now() + DAY)}",
    ),
    "one occurrence ahead, of a series begun long ago": lambda: _one_occurrence(_now() + WEEK),
}


def _render(body: bytes, language: str, *, update: bool) -> tuple[str, str, str]:
    """(whole email, text part, html part unescaped) for the attendee."""
    previous = body.replace(b"SUMMARY:Quarterly planning", b"SUMMARY:Planning") if update else None
    mail = email_build(
        body=body.replace(b"SEQUENCE:0", b"SEQUENCE:1") if update else body,
        method="REQUEST",
        sender=ORGANIZER,
        recipient=ATTENDEE,
        message_id="<past-events@convoke.test>",
        language=language,
        time_zone="Europe/Brussels",
        previous_body=previous,
    )
    raw = mail.message().as_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    page = html.unescape(message.get_body(("html",)).get_content())  # type: ignore[union-attr]
    return raw.decode("utf-8", "replace"), text, page


@pytest.mark.parametrize("update", [False, True], ids=["invitation", "update"])
@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("case", OVER)
def test_an_invitation_to_what_is_over_has_no_links_and_says_so(
    case: str, language: str, update: bool
) -> None:
    body = OVER[case]()
    raw, text, page = _render(body, language, update=update)

    said = translate("email.over", language)
    assert said in text and said in page
    assert "/rsvp/" not in raw and "token=" not in raw
    kind = "email.heading.update" if update else "email.heading.invitation"
    if update and b"RECURRENCE-ID" in body:
        kind += "_occurrence"  # the reader's occurrence changed (its summary)
    assert translate(kind, language, organizer="Olivia Organizer") in text  # still that kind


@pytest.mark.parametrize("update", [False, True], ids=["invitation", "update"])
@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
@pytest.mark.parametrize("case", NOT_OVER)
def test_an_invitation_to_what_is_not_over_has_the_three_links(
    case: str, language: str, update: bool
) -> None:
    _, text, page = _render(NOT_OVER[case](), language, update=update)

    said = translate("email.over", language)
    assert said not in text and said not in page
    for action in ("accepted", "tentative", "declined"):
        assert f"&action={action}" in text, action
        assert f"&action={action}" in page, action


@pytest.mark.parametrize("case", OVER)
def test_what_the_email_calls_over_the_rsvp_page_refuses_as_over(case: str) -> None:
    # The email and the page agree: a link left out is one that could only answer 410.
    body = OVER[case]()
    occurrence = "RECURRENCE-ID:" in body.decode()
    recurrence_id = _recurrence(body) if occurrence else None
    stored = body.replace(b"METHOD:REQUEST\r\n", b"")
    with pytest.raises(RsvpEventOver):
        event_checked(
            stored,
            uid="planning-2030@example.org",
            attendee=ATTENDEE,
            organizer=ORGANIZER,
            recurrence_id=recurrence_id,
            now=timezone.now(),
        )


@pytest.mark.parametrize("case", NOT_OVER)
def test_what_the_email_links_to_the_rsvp_page_accepts(case: str) -> None:
    body = NOT_OVER[case]()
    occurrence = "RECURRENCE-ID:" in body.decode()
    checked = event_checked(
        body.replace(b"METHOD:REQUEST\r\n", b""),
        uid="planning-2030@example.org",
        attendee=ATTENDEE,
        organizer=ORGANIZER,
        recurrence_id=_recurrence(body) if occurrence else None,
        now=timezone.now(),
    )
    assert checked.attendee == ATTENDEE


def _recurrence(body: bytes) -> str:
    from calendars.ical import parse_itip, recurrence_key

    [event] = parse_itip(body).events
    assert event.recurrence_id is not None
    return recurrence_key(event.recurrence_id)
