"""The whole loop on real servers: callback REQUEST -> email -> link -> answer -> REPLY.

Radicale (CalDAV, 127.0.0.1) holds the organizer's event; aiosmtpd (127.0.0.1) receives every
email; Convoke is driven through its HTTP interface only. Radicale does not schedule, so the
REPLY to the organizer is the one Convoke builds and delivers itself.
"""

from __future__ import annotations

import re
import uuid
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from calendars.ical import parse_itip, recurrence_key
from tests.fakes.smtp import SmtpSink
from tests.invitations.rsvp_support import Account, event_body, future, partstats
from tests.scheduling.itip import post_callback

pytestmark = pytest.mark.django_db

BOB = "bob@x.com"
CAROL = "carol@example.net"
LINK = re.compile(r"http://testserver(/rsvp/\?token=[A-Za-z0-9_:.%\-]+&action=(\w+))")


def _part(message: EmailMessage, content_type: str) -> str:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return str(part.get_content())
    raise AssertionError(f"no {content_type} part")


def _links(message: EmailMessage) -> dict[str, str]:
    return {action: path for path, action in LINK.findall(_part(message, "text/plain"))}


def _token(path: str) -> str:
    return parse_qs(urlsplit(path).query)["token"][0]


@pytest.fixture
def deliver(client: Client, django_capture_on_commit_callbacks: Any) -> Any:
    """Run one HTTP call and the deliveries its commit enqueues (eager Celery)."""

    def run(call: Any, *args: Any, **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return call(*args, **kwargs)

    return run


def test_organizer_gets_the_reply_when_the_invitee_answers_from_the_email_link(
    client: Client, deliver: Any, organizer: Account, smtp_sink: SmtpSink, settings: Any
) -> None:
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    attendees = [(BOB, "NEEDS-ACTION"), (CAROL, "NEEDS-ACTION")]
    organizer.event_create(event_body(uid=uid, organizer=organizer.email, attendees=attendees))

    # 1. The CalDAV server's callback posts the REQUEST for bob; the invitation goes out.
    request = event_body(uid=uid, organizer=organizer.email, attendees=attendees, method="REQUEST")
    accepted = deliver(post_callback, client, request, sender=organizer.email, recipient=BOB)
    assert accepted.status_code == 202
    assert smtp_sink.wait_for(1)
    invitation = smtp_sink.messages[0]
    assert invitation.rcpt_tos == (BOB,)
    links = _links(invitation.message)
    assert set(links) == {"accepted", "tentative", "declined"}

    # 2. Opening the link (as a scanner or the invitee) changes nothing on the server.
    etag = organizer.stored(uid)[0]
    page = client.get(links["accepted"])
    assert page.status_code == 200
    assert "Quarterly planning" in page.content.decode()
    assert organizer.stored(uid)[0] == etag

    # 3. The POST stores ACCEPTED for bob, and only for bob.
    token = _token(links["accepted"])
    answered = deliver(client.post, "/rsvp/", {"token": token, "action": "accepted"})
    assert answered.status_code == 200
    assert partstats(organizer.stored(uid)[1])[None] == {BOB: "ACCEPTED", CAROL: "NEEDS-ACTION"}

    # 4. A change of mind from the same email's other link.
    declined = deliver(client.post, "/rsvp/", {"token": token, "action": "declined"})
    assert declined.status_code == 200
    assert partstats(organizer.stored(uid)[1])[None] == {BOB: "DECLINED", CAROL: "NEEDS-ACTION"}

    # 5. The organizer received Convoke's REPLY for each answer, the last one DECLINED.
    assert smtp_sink.wait_for(3)
    replies = [mail for mail in smtp_sink.messages[1:] if mail.rcpt_tos == (organizer.email,)]
    assert len(replies) == 2
    last = replies[-1].message
    assert "declined" in str(last["Subject"]).lower()
    calendar = _part(last, "text/calendar").encode("utf-8")
    reply = parse_itip(calendar)
    assert reply.method is not None and reply.method.value == "REPLY"
    assert [(a.address, str(a.partstat)) for a in reply.primary.attendees] == [(BOB, "DECLINED")]
    assert reply.uid == uid


def test_link_for_one_occurrence_answers_that_occurrence_when_the_request_has_no_master(
    client: Client, deliver: Any, organizer: Account, smtp_sink: SmtpSink
) -> None:
    # bob is invited to the third meeting of a weekly series only: the server sends him a
    # REQUEST holding just that occurrence (RECURRENCE-ID), and the link answers for it.
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    start = future(days=8)
    third = start + (future(days=22) - future(days=8))
    organizer.event_create(
        event_body(
            uid=uid,
            organizer=organizer.email,
            attendees=[(CAROL, "ACCEPTED")],
            start=start,
            rrule="FREQ=WEEKLY;COUNT=5",
            overrides=[(third, [(CAROL, "ACCEPTED"), (BOB, "NEEDS-ACTION")])],
        )
    )
    stored = organizer.stored(uid)[1]
    only_third = _occurrence_only(stored)
    deliver(post_callback, client, only_third, sender=organizer.email, recipient=BOB)
    assert smtp_sink.wait_for(1)
    path = _links(smtp_sink.messages[0].message)["tentative"]
    token = _token(path)

    response = deliver(client.post, "/rsvp/", {"token": token, "action": "tentative"})

    assert response.status_code == 200, response.content.decode()
    after = partstats(organizer.stored(uid)[1])
    assert after[recurrence_key(third)] == {CAROL: "ACCEPTED", BOB: "TENTATIVE"}
    assert after[None] == {CAROL: "ACCEPTED"}


def _occurrence_only(stored: bytes) -> bytes:
    """The iTIP REQUEST a scheduling server sends an attendee of one occurrence only."""
    text = stored.decode("utf-8").replace("\r\n", "\n")
    head, _, rest = text.partition("BEGIN:VEVENT")
    blocks = ("BEGIN:VEVENT" + rest).split("END:VEVENT\n")
    override = next(block for block in blocks if "RECURRENCE-ID" in block)
    head = head.replace("VERSION:2.0\n", "VERSION:2.0\nMETHOD:REQUEST\n")
    body = head + override + "END:VEVENT\nEND:VCALENDAR\n"
    return body.replace("\n", "\r\n").encode("utf-8")
