"""The emails of what a server like La Suite's sends, end to end: the organizer edits her
event on the sabre-like server (tests/fakes/sabre.py), its callbacks reach Convoke, and the
emails say what is true for their reader."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import icalendar
import pytest
from django.core import mail
from django.test import Client

from invitations.models import Delivery, DeliveryStatus
from tests.fakes.sabre import SabreLike
from tests.invitations.rsvp_support import event_body

pytestmark = pytest.mark.django_db

BOB = "bob@example.net"
CAROL = "carol@example.net"
WEEK = dt.timedelta(days=7)


@pytest.fixture
def organizer(sabre: SabreLike) -> str:
    return sabre.user_add()


@pytest.fixture
def deliver(client: Client, sabre: SabreLike, django_capture_on_commit_callbacks: Any) -> Any:
    """Post what the server sent to Convoke's callback and send the emails (eager Celery);
    returns ``{recipient: [email message, ...]}`` of the emails this round sent."""

    def run() -> dict[str, list[EmailMessage]]:
        already = len(mail.outbox)
        with django_capture_on_commit_callbacks(execute=True):
            sabre.callbacks_post(client)
        sent: dict[str, list[EmailMessage]] = {}
        for message in mail.outbox[already:]:
            sent.setdefault(message.to[0], []).append(message.message())
        return sent

    return run


def _edit(
    calendar_change: Callable[[icalendar.Calendar], None], *, bump: bool = True
) -> Callable[[bytes], bytes]:
    """A calendar client's edit; ``bump``: a significant change, SEQUENCE goes up."""

    def edit(data: bytes) -> bytes:
        calendar = icalendar.Calendar.from_ical(data)
        calendar_change(calendar)
        for event in calendar.walk("VEVENT"):
            event["SEQUENCE"] = int(event.get("SEQUENCE", 0)) + (1 if bump else 0)
        return bytes(calendar.to_ical())

    return edit


def _add_attendee(address: str) -> Callable[[icalendar.Calendar], None]:
    def change(calendar: icalendar.Calendar) -> None:
        for event in calendar.walk("VEVENT"):
            line = icalendar.vCalAddress(f"mailto:{address}")
            line.params.update({"CN": "Carol", "PARTSTAT": "NEEDS-ACTION", "RSVP": "TRUE"})
            event.add("ATTENDEE", line)

    return change


def _located(place: str) -> Callable[[icalendar.Calendar], None]:
    def change(calendar: icalendar.Calendar) -> None:
        for event in calendar.walk("VEVENT"):
            event["LOCATION"] = place

    return change


def _subject(message: EmailMessage) -> str:
    return str(message["Subject"])


def test_an_attendee_added_later_gets_an_invitation_and_the_others_an_update(
    sabre: SabreLike, organizer: str, deliver: Any
) -> None:
    # Issue 13, finding 2: the server sends the added attendee the event's current SEQUENCE.
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    sabre.event_store(
        organizer, event_body(uid=uid, organizer=organizer, attendees=[(BOB, "NEEDS-ACTION")])
    )
    assert _subject(deliver()[BOB][0]) == "Invitation: Quarterly planning"
    sabre.event_edit(organizer, uid, _edit(_located("Room 12")))
    assert _subject(deliver()[BOB][0]) == "Updated invitation: Quarterly planning"

    sabre.event_edit(organizer, uid, _edit(_add_attendee(CAROL), bump=False))
    sent = deliver()

    assert list(sent) == [CAROL]  # the server tells only the added attendee
    [invitation] = sent[CAROL]
    calendar = icalendar.Calendar.from_ical(
        next(p for p in invitation.walk() if p.get_content_type() == "text/calendar").get_content()
    )
    assert calendar.walk("VEVENT")[0]["SEQUENCE"] == 1
    assert _subject(invitation) == "Invitation: Quarterly planning"


def test_a_request_after_one_that_never_arrived_is_still_an_invitation(
    sabre: SabreLike, organizer: str, deliver: Any
) -> None:
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    sabre.event_store(
        organizer, event_body(uid=uid, organizer=organizer, attendees=[(BOB, "NEEDS-ACTION")])
    )
    deliver()
    Delivery.objects.filter(uid=uid).update(status=DeliveryStatus.DEAD)

    sabre.event_edit(organizer, uid, _edit(_located("Room 12")))

    assert _subject(deliver()[BOB][0]) == "Invitation: Quarterly planning"
