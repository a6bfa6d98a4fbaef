"""Answers to a recurring event on Radicale: one occurrence, or the whole series."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import icalendar
import pytest
from django.test import Client

from calendars.ical import parse_itip, recurrence_key
from invitations.models import Delivery, DeliveryStatus
from tests.fakes.smtp import SmtpSink
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


@pytest.fixture
def answer(
    client: Client,
    organizer: Account,
    smtp_sink: SmtpSink,
    django_capture_on_commit_callbacks: Any,
) -> Any:
    """Post bob's answer through his link, then send what its commit enqueued (eager Celery,
    every email to the SMTP sink)."""

    def run(uid: str, action: str, occurrence: dt.datetime | None) -> Any:
        token = rsvp_token(
            uid=uid,
            attendee=BOB,
            organizer=organizer.email,
            recurrence_id=recurrence_key(occurrence) if occurrence is not None else None,
        )
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/rsvp/", {"token": token, "action": action})

    return run


def test_answer_to_one_occurrence_leaves_the_others_untouched_when_it_has_no_override(
    client: Client,
    organizer: Account,
    series: tuple[str, dt.datetime],
    answer: Any,
    smtp_sink: SmtpSink,
) -> None:
    uid, start = series
    fourth = start + 3 * WEEK

    response = answer(uid, "accepted", fourth)

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
    _one_reply(smtp_sink, organizer, uid, occurrence=fourth, partstat="ACCEPTED")


def test_answer_to_one_occurrence_updates_its_override_when_one_exists(
    client: Client,
    organizer: Account,
    series: tuple[str, dt.datetime],
    answer: Any,
    smtp_sink: SmtpSink,
) -> None:
    uid, start = series

    response = answer(uid, "declined", start + WEEK)

    assert response.status_code == 200
    after = partstats(organizer.stored(uid)[1])
    assert after[recurrence_key(start + WEEK)] == {BOB: "DECLINED", CAROL: "ACCEPTED"}
    assert after[None][BOB] == "NEEDS-ACTION"
    assert len(after) == 2
    _one_reply(smtp_sink, organizer, uid, occurrence=start + WEEK, partstat="DECLINED")

    # A change of mind for the same occurrence: one more REPLY; the same answer again: none.
    assert answer(uid, "accepted", start + WEEK).status_code == 200
    _one_reply(smtp_sink, organizer, uid, occurrence=start + WEEK, partstat="ACCEPTED", count=2)
    assert answer(uid, "accepted", start + WEEK).status_code == 200
    assert len(_replies_sent(smtp_sink, organizer)) == 2


def test_master_and_overrides_listing_the_attendee_change_when_the_series_is_answered(
    client: Client,
    organizer: Account,
    series: tuple[str, dt.datetime],
    answer: Any,
    smtp_sink: SmtpSink,
) -> None:
    uid, start = series

    response = answer(uid, "tentative", None)

    assert response.status_code == 200
    after = partstats(organizer.stored(uid)[1])
    assert after[None] == {BOB: "TENTATIVE", CAROL: "ACCEPTED"}
    assert after[recurrence_key(start + WEEK)] == {BOB: "TENTATIVE", CAROL: "ACCEPTED"}
    _one_reply(smtp_sink, organizer, uid, occurrence=None, partstat="TENTATIVE")


def _replies_sent(sink: SmtpSink, organizer: Account) -> list[Any]:
    """The emails the organizer received (the SMTP sink), each with its calendar part."""
    return [mail.message for mail in sink.messages if mail.rcpt_tos == (organizer.email,)]


def _one_reply(
    sink: SmtpSink,
    organizer: Account,
    uid: str,
    *,
    occurrence: dt.datetime | None,
    partstat: str,
    count: int = 1,
) -> None:
    """Radicale does not schedule: exactly one more REPLY reaches the organizer, Convoke's own,
    by email: only bob's line with PARTSTAT and CN, the event's UID and SEQUENCE, and the
    occurrence's RECURRENCE-ID when one occurrence was answered (none for the series)."""
    emails = _replies_sent(sink, organizer)
    assert len(emails) == count, [str(m["Subject"]) for m in emails]
    assert Delivery.objects.filter(method="REPLY", recipient=organizer.email).count() == count
    latest = Delivery.objects.filter(method="REPLY", recipient=organizer.email).latest("pk")
    assert latest.status == DeliveryStatus.SENT and latest.sender == BOB
    message = emails[-1]
    assert organizer.email in str(message["To"])
    [part] = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_param("method") == "REPLY"
    body = part.get_content().encode()
    unfolded = re.sub(rb"\r?\n[ \t]", b"", body)
    assert b"SCHEDULE-STATUS" not in unfolded and b"RSVP=" not in unfolded
    calendar = icalendar.Calendar.from_ical(body)
    assert str(calendar["METHOD"]) == "REPLY"
    [event] = calendar.walk("VEVENT")
    assert str(event["UID"]) == uid
    stored = parse_itip(organizer.stored(uid)[1])
    assert int(event.get("SEQUENCE", 0)) == stored.primary.sequence
    assert str(event["ORGANIZER"]).lower() == f"mailto:{organizer.email}"
    line = event["ATTENDEE"]
    assert not isinstance(line, list), "only the answering attendee"
    assert str(line).lower() == f"mailto:{BOB}"
    assert dict(line.params) == {"PARTSTAT": partstat, "CN": "Guest"}
    if occurrence is None:
        assert "RECURRENCE-ID" not in event
    else:
        assert recurrence_key(event["RECURRENCE-ID"].dt) == recurrence_key(occurrence)
        assert "RRULE" not in event


def _no_reply(sink: SmtpSink, organizer: Account) -> None:
    assert _replies_sent(sink, organizer) == []
    assert not Delivery.objects.filter(method="REPLY").exists()


def test_page_shows_the_occurrence_and_its_own_answer_when_the_link_is_for_one_occurrence(
    client: Client,
    organizer: Account,
    series: tuple[str, dt.datetime],
    answer: Any,
    smtp_sink: SmtpSink,
) -> None:
    uid, start = series
    answer(uid, "declined", start + WEEK)
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
    client: Client,
    organizer: Account,
    series: tuple[str, dt.datetime],
    answer: Any,
    smtp_sink: SmtpSink,
) -> None:
    uid, start = series
    etag = organizer.stored(uid)[0]

    for moment in (start + dt.timedelta(days=1), start + 6 * WEEK, start + dt.timedelta(hours=1)):
        assert answer(uid, "accepted", moment).status_code == 404

    assert organizer.stored(uid)[0] == etag
    _no_reply(smtp_sink, organizer)


def test_occurrence_gets_404_when_an_exdate_removed_it(
    client: Client, organizer: Account, answer: Any, smtp_sink: SmtpSink
) -> None:
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

    assert answer(uid, "accepted", third).status_code == 404
    _no_reply(smtp_sink, organizer)
    assert answer(uid, "accepted", start + WEEK).status_code == 200
    _one_reply(smtp_sink, organizer, uid, occurrence=start + WEEK, partstat="ACCEPTED")


def test_occurrence_gets_410_when_it_is_past_while_later_ones_can_be_answered(
    client: Client, organizer: Account, answer: Any, smtp_sink: SmtpSink
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

    assert answer(uid, "accepted", start + WEEK).status_code == 410
    _no_reply(smtp_sink, organizer)
    assert answer(uid, "accepted", start + 4 * WEEK).status_code == 200
    _one_reply(smtp_sink, organizer, uid, occurrence=start + 4 * WEEK, partstat="ACCEPTED")
    assert answer(uid, "declined", None).status_code == 200
    _one_reply(smtp_sink, organizer, uid, occurrence=None, partstat="DECLINED", count=2)
