"""What an update of a series says changed, in every language (issue 13, finding 4)."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import time
import zoneinfo

import pytest

from calendars.translations import SUPPORTED_LANGUAGES, translate
from invitations.emails import email_build
from invitations.rendering.changes import CHANGES_LISTED
from invitations.rendering.dates import moment_text

from .emails_samples import ATTENDEE, ORGANIZER, request

pytestmark = pytest.mark.django_db

BRUSSELS = zoneinfo.ZoneInfo("Europe/Brussels")
RULE = "RRULE:FREQ=WEEKLY;COUNT=6"
# The series: Tuesdays at 14:00 in Brussels from 12 March 2030.
FIRST = dt.datetime(2030, 3, 12, 14, 0, tzinfo=BRUSSELS)
WEEK = dt.timedelta(days=7)


def _plain(body: bytes, previous: bytes, language: str) -> str:
    mail = email_build(
        body=body,
        method="REQUEST",
        sender=ORGANIZER,
        recipient=ATTENDEE,
        message_id="<changes@convoke.test>",
        language=language,
        time_zone="Europe/Brussels",
        previous_body=previous,
    )
    message = email.message_from_bytes(mail.message().as_bytes(), policy=email.policy.default)
    part = message.get_body(("plain",))
    assert part is not None
    return " ".join(str(part.get_content()).split())


def _at(moment: dt.datetime, language: str, *, zone: bool = False) -> str:
    return moment_text(moment, zone="Europe/Brussels", language=language, with_zone=zone)


def _override(moment: dt.datetime, *, start: dt.datetime, extra: str = "") -> str:
    stamp = "%Y%m%dT%H%M%S"
    return (
        f"END:VEVENT\nBEGIN:VEVENT\nUID:planning-2030@example.org\nSEQUENCE:1\n"
        f"DTSTAMP:20300101T120000Z\nRECURRENCE-ID;TZID=Europe/Brussels:{moment.strftime(stamp)}\n"
        f"DTSTART;TZID=Europe/Brussels:{start.strftime(stamp)}\n"
        f"DTEND;TZID=Europe/Brussels:{(start + dt.timedelta(minutes=90)).strftime(stamp)}\n"
        f"SUMMARY:Quarterly planning\nLOCATION:Room 4.2, Rue de la Loi 1, Brussels\n"
        "DESCRIPTION:Agenda:\\n1. Budget\\n2. Hiring\n"
        f"ORGANIZER;CN=Olivia Organizer:mailto:{ORGANIZER}\n"
        f"ATTENDEE;CN=Arthur Attendee;PARTSTAT=NEEDS-ACTION:mailto:{ATTENDEE}\n{extra}"
    ).rstrip("\n")


def _one(text: str, key: str, language: str, **params: str) -> None:
    line = " ".join(translate(key, language, **params).split())
    assert line in text, f"{key} in {language}: {line!r} not in {text!r}"


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_an_exdate_added_names_the_occurrence_removed(language: str) -> None:
    third = FIRST + 2 * WEEK
    text = _plain(
        request(sequence=1, extra=f"{RULE}\nEXDATE;TZID=Europe/Brussels:20300326T140000"),
        request(extra=RULE),
        language,
    )
    _one(text, "email.changes.occurrence_removed", language, original=_at(third, language))


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_an_exdate_taken_back_names_the_occurrence_restored(language: str) -> None:
    third = FIRST + 2 * WEEK
    text = _plain(
        request(sequence=2, extra=RULE),
        request(sequence=1, extra=f"{RULE}\nEXDATE;TZID=Europe/Brussels:20300326T140000"),
        language,
    )
    _one(text, "email.changes.occurrence_restored", language, original=_at(third, language))


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_an_rdate_added_and_one_removed_are_both_named(language: str) -> None:
    added = dt.datetime(2030, 4, 4, 9, 0, tzinfo=BRUSSELS)
    dropped = dt.datetime(2030, 4, 5, 9, 0, tzinfo=BRUSSELS)
    text = _plain(
        request(sequence=1, extra=f"{RULE}\nRDATE;TZID=Europe/Brussels:20300404T090000"),
        request(extra=f"{RULE}\nRDATE;TZID=Europe/Brussels:20300405T090000"),
        language,
    )
    _one(text, "email.changes.occurrence_added", language, when=_at(added, language, zone=True))
    _one(text, "email.changes.occurrence_removed", language, original=_at(dropped, language))


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_an_override_added_cancelled_or_moved_is_named(language: str) -> None:
    second, fourth = FIRST + WEEK, FIRST + 3 * WEEK
    body = request(
        sequence=1,
        extra=RULE
        + "\n"
        + _override(second, start=second, extra="STATUS:CANCELLED")
        + "\n"
        + _override(fourth, start=fourth + dt.timedelta(hours=2)),
    )
    text = _plain(body, request(extra=RULE), language)
    _one(text, "email.changes.occurrence_cancelled", language, original=_at(second, language))
    assert _at(fourth, language) in text
    assert translate("email.changes.occurrence_moved", language, original="", when="")[:8] in text


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_an_override_taken_away_is_back_to_the_series(language: str) -> None:
    fourth = FIRST + 3 * WEEK
    moved = request(extra=RULE + "\n" + _override(fourth, start=fourth + dt.timedelta(hours=2)))
    text = _plain(request(sequence=1, extra=RULE), moved, language)
    _one(text, "email.changes.occurrence_reverted", language, original=_at(fourth, language))


@pytest.mark.parametrize("language", SUPPORTED_LANGUAGES)
def test_a_rule_added_and_a_rule_removed_are_said(language: str) -> None:
    added = _plain(request(sequence=1, extra=RULE), request(), language)
    assert translate("email.changes.recurrence_added", language, repeats="")[:10] in added
    removed = _plain(request(sequence=1), request(extra=RULE), language)
    assert translate("email.changes.recurrence_removed", language, old="")[:10] in removed


def test_an_override_that_changed_nothing_shown_is_not_listed() -> None:
    # Only an attendee's answer differs in the override: nothing the reader sees changed.
    fourth = FIRST + 3 * WEEK
    text = _plain(
        request(sequence=1, extra=RULE + "\n" + _override(fourth, start=fourth)),
        request(extra=RULE),
        "en",
    )
    assert "What changed" not in text


def test_thousands_of_removed_occurrences_give_a_bounded_list_quickly() -> None:
    daily = "RRULE:FREQ=DAILY;COUNT=3000"
    days = [FIRST + dt.timedelta(days=n) for n in range(1, 2001)]
    exdate = "\n".join(f"EXDATE;TZID=Europe/Brussels:{d.strftime('%Y%m%dT%H%M%S')}" for d in days)
    started = time.monotonic()
    text = _plain(request(sequence=1, extra=f"{daily}\n{exdate}"), request(extra=daily), "en")
    assert time.monotonic() - started < 5
    assert text.count("was removed") == CHANGES_LISTED
    assert f"and {2000 - CHANGES_LISTED} more" in text
