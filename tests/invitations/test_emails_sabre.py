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
from tests.invitations.rsvp_support import event_body, future

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


# --- What changed in a series (issue 13, finding 4) --------------------------------------


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def _master(calendar: icalendar.Calendar) -> icalendar.Event:
    return next(e for e in calendar.walk("VEVENT") if "RECURRENCE-ID" not in e)


def _series(
    sabre: SabreLike, organizer: str, deliver: Any, **options: Any
) -> tuple[str, dt.datetime]:
    """A weekly series of 6 starting in 10 days, 14:00 Paris, bob invited (and whoever the
    options add); its invitations sent."""
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    start = future(days=10)
    options.setdefault("attendees", [(BOB, "NEEDS-ACTION")])
    sabre.event_store(
        organizer,
        event_body(
            uid=uid, organizer=organizer, start=start, rrule="FREQ=WEEKLY;COUNT=6", **options
        ),
    )
    deliver()
    return uid, start


def _paris(moment: dt.datetime) -> str:
    """How the English emails name an occurrence of these series (Paris, the reader's zone)."""
    return moment.strftime("%A ") + str(moment.day) + moment.strftime(" %B %Y, %H:%M")


def test_an_occurrence_removed_from_the_series_is_named_in_the_update(
    sabre: SabreLike, organizer: str, deliver: Any
) -> None:
    uid, start = _series(sabre, organizer, deliver)
    third = start + 2 * WEEK

    sabre.event_edit(organizer, uid, _edit(lambda c: _master(c).add("EXDATE", third)))
    [update] = deliver()[BOB]

    assert _subject(update) == "Updated invitation: Quarterly planning"
    assert f"The occurrence on {_paris(third)} was removed." in _text(update)


def test_an_occurrence_added_to_the_series_is_named_in_the_update(
    sabre: SabreLike, organizer: str, deliver: Any
) -> None:
    uid, start = _series(sabre, organizer, deliver)
    extra = start + 2 * WEEK + dt.timedelta(days=2)

    sabre.event_edit(organizer, uid, _edit(lambda c: _master(c).add("RDATE", extra)))
    [update] = deliver()[BOB]

    assert f"An occurrence was added: {_paris(extra)}" in _text(update)


def test_one_occurrence_moved_is_named_in_the_update_of_the_series(
    sabre: SabreLike, organizer: str, deliver: Any
) -> None:
    uid, start = _series(sabre, organizer, deliver)
    second = start + WEEK

    def move_the_second(calendar: icalendar.Calendar) -> None:
        master = _master(calendar)
        override = icalendar.Event()
        for name in ("UID", "SUMMARY", "ORGANIZER", "ATTENDEE", "SEQUENCE", "DTSTAMP"):
            override[name] = master[name]
        override.add("RECURRENCE-ID", second)
        override.add("DTSTART", second + dt.timedelta(hours=2))
        override.add("DTEND", second + dt.timedelta(hours=3))
        calendar.add_component(override)

    sabre.event_edit(organizer, uid, _edit(move_the_second))
    [update] = deliver()[BOB]

    text = _text(update)
    assert f"The occurrence on {_paris(second)} moved to" in text
    assert (
        "16:00" in text.split(f"The occurrence on {_paris(second)} moved to", 1)[1].split("\n")[0]
    )
    assert "changed one occurrence" not in _text(update)  # the reader has the whole series


def test_a_changed_rule_is_said_in_the_update(
    sabre: SabreLike, organizer: str, deliver: Any
) -> None:
    uid, _start = _series(sabre, organizer, deliver)

    sabre.event_edit(
        organizer,
        uid,
        _edit(
            lambda c: _master(c).__setitem__(
                "RRULE", icalendar.vRecur.from_ical("FREQ=WEEKLY;COUNT=3")
            )
        ),
    )
    [update] = deliver()[BOB]

    assert "The repetition changed (it was every" in _text(update)


def test_one_occurrence_reader_is_told_theirs_is_unchanged_when_only_the_series_changed(
    sabre: SabreLike, organizer: str, deliver: Any
) -> None:
    # Carol is invited to the second occurrence only; the organizer then moves the series.
    start = future(days=10)
    second = start + WEEK
    uid, _ = _series(
        sabre,
        organizer,
        deliver,
        overrides=[(second, [(BOB, "NEEDS-ACTION"), (CAROL, "NEEDS-ACTION")])],
    )

    def move_the_series(calendar: icalendar.Calendar) -> None:
        master = _master(calendar)
        master["DTSTART"] = icalendar.vDDDTypes(master["DTSTART"].dt + dt.timedelta(hours=1))
        master["DTEND"] = icalendar.vDDDTypes(master["DTEND"].dt + dt.timedelta(hours=1))

    sabre.event_edit(organizer, uid, _edit(move_the_series))
    sent = deliver()

    [to_carol] = sent[CAROL]
    text = _text(to_carol)
    assert "changed one occurrence" not in text
    assert "updated this event" in text
    assert f"Nothing changed for the occurrence you are invited to, on {_paris(second)}" in text
    assert "The time changed" in _text(sent[BOB][0])


def test_one_occurrence_reader_is_told_it_changed_when_theirs_moved(
    sabre: SabreLike, organizer: str, deliver: Any
) -> None:
    start = future(days=10)
    second = start + WEEK
    uid, _ = _series(
        sabre,
        organizer,
        deliver,
        overrides=[(second, [(BOB, "NEEDS-ACTION"), (CAROL, "NEEDS-ACTION")])],
    )

    def move_the_second(calendar: icalendar.Calendar) -> None:
        override = next(e for e in calendar.walk("VEVENT") if "RECURRENCE-ID" in e)
        override["DTSTART"] = icalendar.vDDDTypes(override["DTSTART"].dt + dt.timedelta(hours=2))
        override["DTEND"] = icalendar.vDDDTypes(override["DTEND"].dt + dt.timedelta(hours=2))

    sabre.event_edit(organizer, uid, _edit(move_the_second))
    [to_carol] = deliver()[CAROL]

    text = _text(to_carol)
    assert "changed one occurrence of this event" in text
    assert "The time changed" in text


# --- Past events (issue 13, finding 5) ---------------------------------------------------


def test_an_invitation_to_an_event_already_over_has_no_links_and_says_so(
    sabre: SabreLike, organizer: str, deliver: Any
) -> None:
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    yesterday = future(days=-1)
    sabre.event_store(
        organizer,
        event_body(
            uid=uid, organizer=organizer, start=yesterday, attendees=[(BOB, "NEEDS-ACTION")]
        ),
    )

    [invitation] = deliver()[BOB]

    text = _text(invitation)
    assert "/rsvp/" not in invitation.as_string()
    assert "This event is already over, so there is nothing to answer." in text


def test_an_occurrence_already_over_has_no_links_while_the_series_goes_on(
    sabre: SabreLike, organizer: str, deliver: Any
) -> None:
    # Carol is invited to last week's occurrence only; Bob to the whole series.
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    start = future(days=-8)
    sabre.event_store(
        organizer,
        event_body(
            uid=uid,
            organizer=organizer,
            start=start,
            rrule="FREQ=WEEKLY;COUNT=6",
            attendees=[(BOB, "NEEDS-ACTION")],
            overrides=[(start, [(BOB, "NEEDS-ACTION"), (CAROL, "NEEDS-ACTION")])],
        ),
    )

    sent = deliver()

    assert "/rsvp/" not in sent[CAROL][0].as_string()
    assert "already over" in _text(sent[CAROL][0])
    assert "/rsvp/?token=" in _text(sent[BOB][0])
