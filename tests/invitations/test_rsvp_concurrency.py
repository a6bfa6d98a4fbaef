"""Answers racing with other writers on Radicale: nothing anyone wrote is lost.

The proxy in front of Radicale makes the race happen every time instead of now and then: it
runs the organizer's edit between Convoke's read and Convoke's PUT, or holds two PUTs until
both have been sent, so that both were prepared from the same version.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from calendars.ical import PartStat, parse_itip
from calendars.models import TransitionSource
from invitations.models import Delivery
from invitations.rsvp import RsvpOutcome, rsvp_answer_record
from tests.fakes.smtp import SmtpSink
from tests.invitations.rsvp_support import Account, DavProxy, event_body, partstats, rsvp_token

BOB = "bob@x.com"
JIMBOB = "jimbob@x.com"


def _event(organizer: Account) -> str:
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    organizer.event_create(
        event_body(
            uid=uid,
            organizer=organizer.email,
            attendees=[(BOB, "NEEDS-ACTION"), (JIMBOB, "NEEDS-ACTION")],
        )
    )
    return uid


@pytest.mark.django_db
def test_organizer_edit_and_answer_both_survive_when_the_edit_lands_between_read_and_put(
    client: Client, dav_proxy: DavProxy, organizer: Account
) -> None:
    uid = _event(organizer)

    def organizer_moves_the_meeting() -> None:
        organizer.replace(
            uid,
            lambda data: data.replace(b"SEQUENCE:0", b"LOCATION:Room 12\r\nSEQUENCE:1"),
        )

    dav_proxy.before_put = organizer_moves_the_meeting
    token = rsvp_token(uid=uid, attendee=BOB, organizer=organizer.email)

    response = client.post("/rsvp/", {"token": token, "action": "accepted"})

    assert response.status_code == 200, response.content.decode()
    stored = organizer.stored(uid)[1]
    event = parse_itip(stored).primary
    assert event.location == "Room 12" and event.sequence == 1
    assert partstats(stored)[None] == {BOB: "ACCEPTED", JIMBOB: "NEEDS-ACTION"}
    assert dav_proxy.count("PUT") == 2  # ours (412), ours again on the organizer's version


@pytest.mark.django_db(transaction=True)
def test_both_answers_are_stored_when_two_invitees_answer_at_the_same_moment(
    dav_proxy: DavProxy, organizer: Account, smtp_sink: SmtpSink
) -> None:
    uid = _event(organizer)
    dav_proxy.hold_puts = 2  # both PUTs leave from the same version
    outcomes: dict[str, RsvpOutcome] = {}
    errors: list[BaseException] = []

    def answer(attendee: str, partstat: PartStat) -> None:
        try:
            outcomes[attendee] = rsvp_answer_record(
                uid=uid,
                organizer=organizer.email,
                attendee=attendee,
                recurrence_id=None,
                partstat=partstat,
                source=TransitionSource.EMAIL_LINK,
            )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=answer, args=(BOB, PartStat.ACCEPTED)),
        threading.Thread(target=answer, args=(JIMBOB, PartStat.DECLINED)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors, errors
    assert partstats(organizer.stored(uid)[1])[None] == {BOB: "ACCEPTED", JIMBOB: "DECLINED"}
    assert sorted(o.changed for o in outcomes.values()) == [True, True]
    assert sorted(o.event.partstat for o in outcomes.values()) == ["ACCEPTED", "DECLINED"]
    assert dav_proxy.count("PUT") == 3  # one of the two got 412 and went again
    replies = Delivery.objects.filter(method="REPLY", recipient=organizer.email)
    assert sorted(replies.values_list("sender", flat=True)) == [BOB, JIMBOB]
    assert smtp_sink.wait_for(2)
    assert sorted(mail.rcpt_tos for mail in smtp_sink.messages) == [(organizer.email,)] * 2


def test_answer_is_written_and_replied_once_when_the_button_is_clicked_twice(
    dav_proxy: DavProxy, organizer: Account, transactional_db: None
) -> None:
    uid = _event(organizer)
    dav_proxy.hold_puts = 2
    outcomes: list[RsvpOutcome] = []

    def click() -> None:
        try:
            outcomes.append(
                rsvp_answer_record(
                    uid=uid,
                    organizer=organizer.email,
                    attendee=BOB,
                    recurrence_id=None,
                    partstat=PartStat.ACCEPTED,
                    source=TransitionSource.EMAIL_LINK,
                )
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(outcomes) == 2
    assert sorted(o.changed for o in outcomes) == [False, True]
    assert partstats(organizer.stored(uid)[1])[None][BOB] == "ACCEPTED"
    assert Delivery.objects.filter(method="REPLY", sender=BOB).count() == 1


@pytest.mark.django_db
def test_each_reply_reaches_the_organizer_when_answers_come_within_one_second(
    organizer: Account, settings: Any
) -> None:
    # Two attendees, then a change of mind, all stamped within the same second: the
    # organizer must get three REPLYs, ordered by DTSTAMP (RFC 5546 section 2.1.5).
    uid = _event(organizer)
    moment = timezone.now()
    answers = [(BOB, PartStat.ACCEPTED), (JIMBOB, PartStat.TENTATIVE), (BOB, PartStat.DECLINED)]

    for attendee, partstat in answers:
        rsvp_answer_record(
            uid=uid,
            organizer=organizer.email,
            attendee=attendee,
            recurrence_id=None,
            partstat=partstat,
            source=TransitionSource.EMAIL_LINK,
            now=moment,
        )

    replies = list(Delivery.objects.filter(method="REPLY").order_by("dtstamp"))
    assert [(r.sender, partstats(bytes(r.body))[None]) for r in replies] == [
        (BOB, {BOB: "ACCEPTED"}),
        (JIMBOB, {JIMBOB: "TENTATIVE"}),
        (BOB, {BOB: "DECLINED"}),
    ]
    assert len({r.dtstamp for r in replies}) == 3
