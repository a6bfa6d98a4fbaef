"""Golden emails: representative messages in every language, reviewed by eye, then fixed.

Each case renders the subject, the address headers, the plain text and the HTML; RSVP
tokens (which carry a timestamp) are replaced by ``TOKEN``. To accept a deliberate change,
run with ``CONVOKE_UPDATE_GOLDEN=1`` and review the diff of ``tests/invitations/golden/``.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
from pathlib import Path

import pytest

from invitations.emails import email_build

from .corpus import corpus_path
from .emails_samples import request

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("CONVOKE_UPDATE_GOLDEN") == "1"
LANGUAGES = ("en", "fr", "de", "nl")

# name: (corpus file, method, sender, recipient, recipient's zone)
CASES = {
    # Exchange 2010: TZID "Romance Standard Time" (a Windows zone), CN folded mid-word.
    "outlook_windows_invitation": (
        "nylas__invite_w_rsvps1.ics",
        "REQUEST",
        "test2@example.com",
        "test1@example.com",
        "America/New_York",
    ),
    # Google Calendar: a daily series with one occurrence renamed (RECURRENCE-ID).
    "google_recurring_override": (
        "allenporter-ical__recurring_with_single_change.ics",
        "REQUEST",
        "organizer@example.org",
        "guest@example.net",
        "Europe/London",
    ),
    # Nextcloud: an all-day event over three days (DTEND exclusive).
    "all_day_multi_day": (
        "nextcloud-calendar__vcalendar-event-allday.ics",
        "REQUEST",
        "organizer@example.org",
        "guest@example.net",
        "Europe/Berlin",
    ),
    # RFC 5546 4.4.3: one occurrence of a series cancelled, no DTSTART.
    "cancel_one_occurrence": (
        "rfc5546__section-4.4.3_cancel-an-instance.ics",
        "CANCEL",
        "a@example.com",
        "b@example.com",
        "Europe/Paris",
    ),
    # Invented (the corpus' events are all over, so their emails carry no links): a weekly
    # series in 2030 with its Accept / Maybe / Decline links.
    "future_series_with_links": (
        "sample:weekly",
        "REQUEST",
        "organizer@example.org",
        "attendee@example.net",
        "Europe/Brussels",
    ),
    # Nextcloud: an attendee's REPLY to the organizer.
    "reply_accepted": (
        "nextcloud-calendar__reply.ics",
        "REPLY",
        "b@example.com",
        "a@example.com",
        "Europe/Amsterdam",
    ),
}

_TOKEN = re.compile(r"token=[^&\s\"'<]+")


def render(case: str, language: str) -> tuple[str, str]:
    filename, method, sender, recipient, zone = CASES[case]
    body = (
        request(extra="RRULE:FREQ=WEEKLY;COUNT=6")
        if filename == "sample:weekly"
        else corpus_path(filename).read_bytes()
    )
    mail = email_build(
        body=body,
        method=method,
        sender=sender,
        recipient=recipient,
        message_id=f"<{case}.{language}@golden.test>",
        language=language,
        time_zone=zone,
    )
    message = email.message_from_bytes(mail.message().as_bytes(), policy=email.policy.default)
    head = "".join(f"{name}: {message[name]}\n" for name in ("Subject", "From", "Reply-To", "To"))
    text = head + "\n" + message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return _TOKEN.sub("token=TOKEN", text), _TOKEN.sub("token=TOKEN", html)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("case", CASES)
def test_email_matches_golden_copy(corpus_dir: Path, case: str, language: str) -> None:
    text, html = render(case, language)
    for suffix, content in ((".txt", text), (".html", html)):
        path = GOLDEN_DIR / f"{case}.{language}{suffix}"
        if UPDATE:
            path.write_text(content, encoding="utf-8")
        assert path.is_file(), f"{path.name} is missing; run with CONVOKE_UPDATE_GOLDEN=1"
        assert content == path.read_text(encoding="utf-8"), f"{path.name} differs"
