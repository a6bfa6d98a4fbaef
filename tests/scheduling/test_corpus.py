"""Every file of the shared corpus posted as a REQUEST: delivered as a valid email, or a 400.

Sender and recipient come from the file's ORGANIZER and first ATTENDEE where it has them
(read through ``calendars.ical``), else stand-ins. No file may cause a 500 or an exception
escaping the view.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from calendars.ical import ICalendarError, parse_itip
from invitations.models import Delivery, DeliveryStatus
from scheduling.models import SchedulingMessage
from tests.conftest import CORPUS_DIR
from tests.scheduling.itip import ATTENDEE, ORGANIZER, callback_headers, post_callback

pytestmark = pytest.mark.django_db

CORPUS_FILES = sorted(p.name for p in (CORPUS_DIR / "ics").glob("*")) or ["(corpus absent)"]


def _sender_and_recipient(body: bytes) -> tuple[str, str]:
    try:
        itip = parse_itip(body)
    except ICalendarError:
        return ORGANIZER, ATTENDEE
    event = itip.primary
    sender = event.organizer.address if event.organizer else ORGANIZER
    attendees = [a.address for e in itip.events for a in e.attendees]
    return sender, attendees[0] if attendees else ATTENDEE


def _calendar_parts(message: EmailMessage) -> list[EmailMessage]:
    return [part for part in message.walk() if part.get_content_type() == "text/calendar"]


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_file_is_delivered_or_refused_with_a_reason_when_posted_as_request(
    client: Client, corpus_dir: Path, name: str, django_capture_on_commit_callbacks: Any
) -> None:
    body = (corpus_dir / "ics" / name).read_bytes()
    sender, recipient = _sender_and_recipient(body)
    headers = callback_headers(sender=sender, recipient=recipient)

    with django_capture_on_commit_callbacks(execute=True):  # the delivery runs eagerly
        response = post_callback(client, body, headers=headers)

    text = response.content.decode("utf-8")
    assert response.status_code in (202, 400), f"{response.status_code}: {text}"
    if response.status_code == 400:
        assert len(text.strip()) > 10
        assert SchedulingMessage.objects.count() == 0
        return

    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SENT, delivery.last_error
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
