"""Every file of the shared corpus through the callback, as a CalDAV server would post it.

Driven by ``../shared/corpus/manifest.json``: the method header is the body's own METHOD
(REQUEST when it has none, as for a plain event with attendees), the sender and recipient
are the ORGANIZER and first ATTENDEE (the other way round for a REPLY), and a ``.eml`` file
posts its first calendar part. Whether a file *must* be delivered follows from what the
manifest says about it (:func:`must_be_delivered`), except for the few files listed below
where Convoke deliberately reads the file otherwise than the manifest's parser, each with
its reason. A delivered file is sent as a valid email; any other is refused with a 400 that
says why, and nothing is stored. A parser that refused everything, or accepted everything,
fails here.
"""

from __future__ import annotations

import email
import email.policy
import json
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from calendars.ical import ITIP_EMAIL_METHODS, ICalendarError, Method, parse_itip
from invitations.models import Delivery, DeliveryStatus
from scheduling.models import SchedulingMessage
from tests.conftest import CORPUS_DIR
from tests.scheduling.itip import ATTENDEE, ORGANIZER, callback_headers, post_callback

pytestmark = pytest.mark.django_db

MANIFEST_PATH = CORPUS_DIR / "manifest.json"
MANIFEST: list[dict[str, Any]] = (
    json.loads(MANIFEST_PATH.read_text())["files"] if MANIFEST_PATH.is_file() else []
)
EMAIL_METHODS = {method.value for method in ITIP_EMAIL_METHODS}

# Delivered although the manifest's parser (icalendar 7.3) could not read the file.
DELIVERED_DESPITE_MANIFEST = {
    "calendarserver__Test-01B.ics": "bare CR line ends (Lotus Notes): split like CRLF",
    "calendarserver__Test-03B.ics": "bare CR line ends (Lotus Notes): split like CRLF",
}
# Refused although the manifest's reading looks deliverable: Convoke checks more.
REFUSED_DESPITE_MANIFEST = {
    "ical4j__THFC.ics": "114 event UIDs: an iTIP message is about one event",
    "nylas__bogus_sequence_number.ics": "SEQUENCE beyond 2**31 - 1",
    "radicale__event_issue2172.ics": "ORGANIZER mailto:REDACTED is not an address",
    "rfc5546__section-4.2.1_a-group-event-request.ics": "DTEND 19970701T2100000Z (the RFC's typo)",
    "rfc5546__section-4.4.8_refreshing-a-recurring-event_4.ics": "DTEND before DTSTART",
    "rfc5546__section-4.7.2_bad-recurrence-id_1.ics": "RDATE period 199700819T220000Z",
}


def method_of(entry: dict[str, Any]) -> str:
    """The method header a CalDAV server would send: the body's METHOD, else REQUEST."""
    return str(entry["method"] or Method.REQUEST.value).upper()


def must_be_delivered(entry: dict[str, Any]) -> bool:
    """What the manifest says makes a deliverable iTIP message: one readable VCALENDAR with
    an event, a method Convoke emails, an ORGANIZER and at least one ATTENDEE."""
    if entry["file"] in DELIVERED_DESPITE_MANIFEST:
        return True
    if entry["file"] in REFUSED_DESPITE_MANIFEST:
        return False
    return bool(
        entry["parses_with_icalendar"]
        and entry["n_vcalendars"] == 1
        and entry["n_vevents"] >= 1
        and method_of(entry) in EMAIL_METHODS
        and entry["organizer"]
        and entry["n_attendees"] >= 1
    )


def body_of(entry: dict[str, Any]) -> bytes:
    raw = (CORPUS_DIR / "ics" / entry["file"]).read_bytes()
    if entry["container"] != "eml":
        return raw
    message = email.message_from_bytes(raw, policy=email.policy.default)
    for part in message.walk():
        if part.get_content_type() in ("text/calendar", "application/ics"):
            payload = part.get_payload(decode=True)
            return payload if isinstance(payload, bytes) else b""
    return b""


def _parties(body: bytes, method: str) -> tuple[str, str]:
    """(sender, recipient): organizer to first attendee, or the reverse for a REPLY."""
    try:
        itip = parse_itip(body)
    except ICalendarError:
        return ORGANIZER, ATTENDEE
    event = itip.primary
    organizer = event.organizer.address if event.organizer else ORGANIZER
    attendees = [a.address for e in itip.events for a in e.attendees]
    attendee = attendees[0] if attendees else ATTENDEE
    return (attendee, organizer) if method == Method.REPLY else (organizer, attendee)


def _calendar_parts(message: EmailMessage) -> list[EmailMessage]:
    return [part for part in message.walk() if part.get_content_type() == "text/calendar"]


def test_manifest_lists_every_corpus_file_and_the_exceptions_exist(corpus_dir: Path) -> None:
    listed = {entry["file"] for entry in MANIFEST}
    assert listed == {path.name for path in (corpus_dir / "ics").iterdir()}
    assert set(DELIVERED_DESPITE_MANIFEST) | set(REFUSED_DESPITE_MANIFEST) <= listed
    # Most of the corpus is not iTIP at all; what is must get through.
    delivered = [entry for entry in MANIFEST if must_be_delivered(entry)]
    assert len(delivered) == 62


@pytest.mark.parametrize("entry", MANIFEST, ids=[entry["file"] for entry in MANIFEST])
def test_corpus_file_is_delivered_when_deliverable_and_refused_with_a_reason_otherwise(
    client: Client, corpus_dir: Path, entry: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    body = body_of(entry)
    method = method_of(entry)
    sender, recipient = _parties(body, method)
    headers = callback_headers(sender=sender, recipient=recipient, method=method)

    with django_capture_on_commit_callbacks(execute=True):  # the delivery runs eagerly
        response = post_callback(client, body, headers=headers)

    text = response.content.decode("utf-8")
    if not must_be_delivered(entry):
        assert response.status_code == 400, f"{response.status_code}: {text}"
        assert len(text.strip()) > 10
        assert not SchedulingMessage.objects.exists() and not Delivery.objects.exists()
        return

    assert response.status_code == 202, text
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SENT, delivery.last_error
    assert delivery.method == method
    assert len(mail.outbox) == 1
    raw = mail.outbox[0].message(policy=email.policy.SMTP).as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert not [d for d in parsed.defects]
    assert parsed["Message-ID"] == delivery.message_id_header
    assert recipient in [a.addr_spec.lower() for a in parsed["To"].addresses]
    assert parsed["From"] and parsed["Subject"] and parsed["Date"]
    [calendar] = _calendar_parts(parsed)
    assert parse_itip(calendar.get_content().encode("utf-8")).uid == delivery.uid
