"""Answers to a recurring event on Radicale: one occurrence, or the whole series."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from django.test import Client

from calendars.ical import parse_itip, recurrence_key
from invitations.models import Delivery
from tests.invitations.rsvp_support import (
    Account,
    event_body,
    future,
    partstats,
    rsvp_path,
    rsvp_token,
)

pytestmark = pytest.mark.django_db

BOB = "bob@x.com"
CAROL = "carol@example.net"
WEEK = dt.timedelta(days=7)


@pytest.fixture
def series(organizer: Account) -> tuple[str, dt.datetime]:
    """A weekly series of 6 starting in 10 days, bob and carol invited; the 2nd occurrence
    is moved one hour later (an override that lists both). Returns (UID, first start)."""
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    start = future(days=10)
    second = start + WEEK
    organizer.event_create(
        event_body(
            uid=uid,
            organizer=organizer.email,
            attendees=[(BOB, "NEEDS-ACTION"), (CAROL, "ACCEPTED")],
            start=start,
            rrule="FREQ=WEEKLY;COUNT=6",
            overrides=[(second, [(BOB, "NEEDS-ACTION"), (CAROL, "ACCEPTED")])],
        )
    )
    return uid, start


def _answer(
    client: Client, organizer: Account, uid: str, action: str, occurrence: dt.datetime | None
) -> Any:
    token = rsvp_token(
        uid=uid,
        attendee=BOB,
        organizer=organizer.email,
        recurrence_id=recurrence_key(occurrence) if occurrence is not None else None,
    )
    return client.post("/rsvp/", {"token": token, "action": action})


def test_answer_to_one_occurrence_leaves_the_others_untouched_when_it_has_no_override(
    client: Client, organizer: Account, series: tuple[str, dt.datetime]
) -> None:
    uid, start = series
    fourth = start + 3 * WEEK

    response = _answer(client, organizer, uid, "accepted", fourth)

    assert response.status_code == 200, response.content.decode()
    after = partstats(organizer.stored(uid)[1])
    assert after[recurrence_key(fourth)] == {BOB: "ACCEPTED", CAROL: "ACCEPTED"}
    assert after[None] == {BOB: "NEEDS-ACTION", CAROL: "ACCEPTED"}
    assert after[recurrence_key(start + WEEK)] == {BOB: "NEEDS-ACTION", CAROL: "ACCEPTED"}
    assert len(after) == 3
    created = next(
        e
        for e in parse_itip(organizer.stored(uid)[1]).events
        if e.recurrence_id is not None and recurrence_key(e.recurrence_id) == recurrence_key(fourth)
    )
    assert created.start == fourth and created.end == fourth + dt.timedelta(hours=1)
    assert created.rrule is None and created.summary == "Quarterly planning"
    _one_reply(organizer, occurrence=fourth, partstat="ACCEPTED")


def test_answer_to_one_occurrence_updates_its_override_when_one_exists(
    client: Client, organizer: Account, series: tuple[str, dt.datetime]
) -> None:
    uid, start = series

    response = _answer(client, organizer, uid, "declined", start + WEEK)

    assert response.status_code == 200
    after = partstats(organizer.stored(uid)[1])
    assert after[recurrence_key(start + WEEK)] == {BOB: "DECLINED", CAROL: "ACCEPTED"}
    assert after[None][BOB] == "NEEDS-ACTION"
    assert len(after) == 2


def test_master_and_overrides_listing_the_attendee_change_when_the_series_is_answered(
    client: Client, organizer: Account, series: tuple[str, dt.datetime]
) -> None:
    uid, start = series

    response = _answer(client, organizer, uid, "tentative", None)

    assert response.status_code == 200
    after = partstats(organizer.stored(uid)[1])
    assert after[None] == {BOB: "TENTATIVE", CAROL: "ACCEPTED"}
    assert after[recurrence_key(start + WEEK)] == {BOB: "TENTATIVE", CAROL: "ACCEPTED"}
    _one_reply(organizer, occurrence=None, partstat="TENTATIVE")


def _one_reply(organizer: Account, *, occurrence: dt.datetime | None, partstat: str) -> None:
    """Radicale does not schedule: exactly one REPLY reaches the organizer, Convoke's, for the
    series or with the occurrence's RECURRENCE-ID."""
    [reply] = Delivery.objects.filter(method="REPLY", recipient=organizer.email)
    [event] = parse_itip(bytes(reply.body)).events
    assert [(a.address, str(a.partstat)) for a in event.attendees] == [(BOB, partstat)]
    if occurrence is None:
        assert event.recurrence_id is None
    else:
        assert event.recurrence_id is not None
        assert recurrence_key(event.recurrence_id) == recurrence_key(occurrence)


def test_page_shows_the_occurrence_and_its_own_answer_when_the_link_is_for_one_occurrence(
    client: Client, organizer: Account, series: tuple[str, dt.datetime]
) -> None:
    uid, start = series
    _answer(client, organizer, uid, "declined", start + WEEK)
    token = rsvp_token(
        uid=uid, attendee=BOB, organizer=organizer.email, recurrence_id=recurrence_key(start + WEEK)
    )

    page = client.get(rsvp_path(token, "accepted")).content.decode()

    assert 'data-partstat="DECLINED"' in page
    assert "applies to this occurrence only" in page
    series_page = client.get(
        rsvp_path(rsvp_token(uid=uid, attendee=BOB, organizer=organizer.email))
    ).content.decode()
    assert 'data-partstat="NEEDS-ACTION"' in series_page
    assert "every occurrence" in series_page


def test_occurrence_outside_the_series_gets_404_when_no_such_occurrence(
    client: Client, organizer: Account, series: tuple[str, dt.datetime]
) -> None:
    uid, start = series
    etag = organizer.stored(uid)[0]

    for moment in (start + dt.timedelta(days=1), start + 6 * WEEK, start + dt.timedelta(hours=1)):
        assert _answer(client, organizer, uid, "accepted", moment).status_code == 404

    assert organizer.stored(uid)[0] == etag


def test_occurrence_gets_404_when_an_exdate_removed_it(client: Client, organizer: Account) -> None:
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    start = future(days=10)
    third = start + 2 * WEEK
    body = event_body(
        uid=uid,
        organizer=organizer.email,
        attendees=[(BOB, "NEEDS-ACTION")],
        start=start,
        rrule="FREQ=WEEKLY;COUNT=6",
    ).replace(
        b"RRULE:FREQ=WEEKLY;COUNT=6",
        b"RRULE:FREQ=WEEKLY;COUNT=6\r\nEXDATE;TZID=Europe/Paris:"
        + third.strftime("%Y%m%dT%H%M%S").encode(),
    )
    organizer.event_create(body)

    assert _answer(client, organizer, uid, "accepted", third).status_code == 404
    assert _answer(client, organizer, uid, "accepted", start + WEEK).status_code == 200


def test_occurrence_gets_410_when_it_is_past_while_later_ones_can_be_answered(
    client: Client, organizer: Account
) -> None:
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    start = future(days=-15)
    organizer.event_create(
        event_body(
            uid=uid,
            organizer=organizer.email,
            attendees=[(BOB, "NEEDS-ACTION")],
            start=start,
            rrule="FREQ=WEEKLY;COUNT=6",
        )
    )

    assert _answer(client, organizer, uid, "accepted", start + WEEK).status_code == 410
    assert _answer(client, organizer, uid, "accepted", start + 4 * WEEK).status_code == 200
    assert _answer(client, organizer, uid, "declined", None).status_code == 200
