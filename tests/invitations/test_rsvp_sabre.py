"""Every answer reaches the organizer exactly once, on a server that behaves like La Suite's.

Issue 13, finding 1: a real sabre/dav server sends nothing when Convoke writes an attendee's
PARTSTAT into the organizer's copy as the organizer, so with the default settings no
organizer ever heard of an answer. Against the sabre-like server (tests/fakes/sabre.py, with
Convoke's default settings and La Suite's API key), each answer given through an RSVP link
produces exactly one REPLY to the organizer, never both and never neither:

- an attendee who is a user of the server, with their own copy: the answer is written there,
  as them, and the server's REPLY (its callback) is the one;
- anyone else: the answer is written into the organizer's copy and Convoke's REPLY is the one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import icalendar
import pytest
from django.test import Client

from calendars.ical import Method, parse_itip, recurrence_key
from invitations.models import Delivery, DeliveryKind, DeliveryStatus
from scheduling.models import SchedulingMessage
from tests.fakes.sabre import SabreLike
from tests.invitations.rsvp_support import event_body, future, partstats, rsvp_token

pytestmark = pytest.mark.django_db

BOB = "bob@local.example.org"  # a user of the server: he has his own copy
CAROL = "carol@example.net"  # not a user of the server
WEEK = dt.timedelta(days=7)
SERVER, CONVOKE = "server", "convoke"
ROUTES = {BOB: SERVER, CAROL: CONVOKE}


@pytest.fixture
def organizer(sabre: SabreLike) -> str:
    sabre.user_add(BOB)
    return sabre.user_add()


@pytest.fixture
def deliver(client: Client, sabre: SabreLike, django_capture_on_commit_callbacks: Any) -> Any:
    """Run ``call``, then post what the server sent meanwhile to Convoke's callback, with the
    emails they cause sent (eager Celery)."""

    def run(call: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            result = call()
        with django_capture_on_commit_callbacks(execute=True):
            sabre.callbacks_post(client)
        return result

    return run


def _event(sabre: SabreLike, organizer: str, **options: Any) -> str:
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    sabre.event_store(
        organizer,
        event_body(
            uid=uid,
            organizer=organizer,
            attendees=[(BOB, "NEEDS-ACTION"), (CAROL, "NEEDS-ACTION")],
            **options,
        ),
    )
    return uid


def _answer(
    client: Client,
    organizer: str,
    uid: str,
    attendee: str,
    action: str = "accepted",
    occurrence: dt.datetime | None = None,
) -> Any:
    token = rsvp_token(
        uid=uid,
        attendee=attendee,
        organizer=organizer,
        recurrence_id=recurrence_key(occurrence) if occurrence is not None else None,
    )
    return client.post("/rsvp/", {"token": token, "action": action})


def _replies(organizer: str) -> list[Delivery]:
    return list(
        Delivery.objects.filter(
            kind=DeliveryKind.ITIP, method=Method.REPLY, recipient=organizer
        ).order_by("pk")
    )


def _route(reply: Delivery) -> str:
    """Who sent this REPLY: the server (it came through the callback) or Convoke."""
    return SERVER if SchedulingMessage.objects.filter(delivery=reply).exists() else CONVOKE


def _answer_lines(reply: Delivery) -> list[Any]:
    calendar = icalendar.Calendar.from_ical(bytes(reply.body))
    lines = []
    for event in calendar.walk("VEVENT"):
        listed = event.get("ATTENDEE")
        lines += listed if isinstance(listed, list) else [listed]
    return lines


@pytest.mark.parametrize("attendee", [BOB, CAROL])
def test_the_organizer_gets_exactly_one_reply_when_an_invitee_answers_from_the_link(
    client: Client, deliver: Any, sabre: SabreLike, organizer: str, attendee: str
) -> None:
    uid = deliver(lambda: _event(sabre, organizer))
    assert Delivery.objects.filter(method=Method.REQUEST).count() == 2  # the invitations

    response = deliver(lambda: _answer(client, organizer, uid, attendee))

    assert response.status_code == 200, response.content.decode()
    [reply] = _replies(organizer)
    assert _route(reply) == ROUTES[attendee]
    assert reply.sender == attendee and reply.status == DeliveryStatus.SENT
    [line] = _answer_lines(reply)
    assert str(line).lower() == f"mailto:{attendee}" and line.params["PARTSTAT"] == "ACCEPTED"
    stored = sabre.stored(organizer, uid)
    assert stored is not None and partstats(stored)[None][attendee] == "ACCEPTED"
    if attendee == BOB:
        bobs = sabre.stored(BOB, uid)
        assert bobs is not None and partstats(bobs)[None][BOB] == "ACCEPTED"
        assert sabre.count("PUT", user=organizer) == 1  # only the organizer's own creation


@pytest.mark.parametrize("attendee", [BOB, CAROL])
def test_the_page_says_how_the_organizer_hears_of_the_answer(
    client: Client, deliver: Any, sabre: SabreLike, organizer: str, attendee: str
) -> None:
    uid = deliver(lambda: _event(sabre, organizer))

    page = deliver(lambda: _answer(client, organizer, uid, attendee)).content.decode()

    if attendee == BOB:
        assert "saved in your calendar; the calendar server sends it to Alice Martin" in page
    else:
        assert "calendar of Alice Martin, who is sent an email about it" in page
    assert "will be told" not in page


@pytest.mark.parametrize("attendee", [BOB, CAROL])
def test_every_change_of_mind_is_one_reply_and_the_same_answer_again_none(
    client: Client, deliver: Any, sabre: SabreLike, organizer: str, attendee: str
) -> None:
    uid = deliver(lambda: _event(sabre, organizer))

    for action in ("accepted", "accepted", "declined", "tentative", "tentative"):
        assert (
            deliver(lambda a=action: _answer(client, organizer, uid, attendee, a)).status_code
            == 200
        )

    answers = [_answer_lines(r)[0].params["PARTSTAT"] for r in _replies(organizer)]
    assert answers == ["ACCEPTED", "DECLINED", "TENTATIVE"]
    assert {_route(r) for r in _replies(organizer)} == {ROUTES[attendee]}


@pytest.mark.parametrize("attendee", [BOB, CAROL])
def test_one_reply_for_the_whole_series_and_one_with_recurrence_id_for_one_occurrence(
    client: Client, deliver: Any, sabre: SabreLike, organizer: str, attendee: str
) -> None:
    start = future(days=10)
    uid = deliver(lambda: _event(sabre, organizer, start=start, rrule="FREQ=WEEKLY;COUNT=6"))
    third = start + 2 * WEEK

    assert deliver(lambda: _answer(client, organizer, uid, attendee, "accepted")).status_code == 200
    response = deliver(
        lambda: _answer(client, organizer, uid, attendee, "declined", occurrence=third)
    )

    assert response.status_code == 200, response.content.decode()
    series, occurrence = _replies(organizer)
    assert {_route(series), _route(occurrence)} == {ROUTES[attendee]}
    assert "RECURRENCE-ID" not in icalendar.Calendar.from_ical(bytes(series.body)).walk("VEVENT")[0]
    [event] = parse_itip(bytes(occurrence.body)).events
    assert event.recurrence_id is not None
    assert recurrence_key(event.recurrence_id) == recurrence_key(third)
    assert [a.partstat for a in event.attendees] == ["DECLINED"]
    stored = sabre.stored(organizer, uid)
    assert stored is not None
    assert partstats(stored)[None][attendee] == "ACCEPTED"
    assert partstats(stored)[recurrence_key(third)][attendee] == "DECLINED"


@pytest.mark.parametrize("attendee", [BOB, CAROL])
def test_one_reply_and_the_organizers_edit_kept_when_she_edits_between_our_read_and_put(
    client: Client, deliver: Any, sabre: SabreLike, organizer: str, attendee: str
) -> None:
    uid = deliver(lambda: _event(sabre, organizer))

    def organizer_moves_the_meeting() -> None:
        sabre.event_edit(
            organizer,
            uid,
            lambda data: data.replace(b"SEQUENCE:0", b"LOCATION:Room 12\nSEQUENCE:1"),
        )

    # Convoke writes as the attendee into their copy, or as the organizer into hers.
    sabre.before_put_user = BOB if attendee == BOB else organizer
    sabre.before_put = organizer_moves_the_meeting

    response = deliver(lambda: _answer(client, organizer, uid, attendee))

    assert response.status_code == 200, response.content.decode()
    assert sabre.before_put is None  # the edit did land in between: our PUT got 412
    if attendee == BOB:
        assert sabre.count("PUT", user=BOB) == 2  # refused, then on the new version
    else:  # her creation, her edit, and ours twice
        assert sabre.count("PUT", user=organizer) == 4
    stored = sabre.stored(organizer, uid)
    assert stored is not None
    event = parse_itip(stored).primary
    assert (event.location, event.sequence) == ("Room 12", 1)
    assert partstats(stored)[None][attendee] == "ACCEPTED"
    [reply] = _replies(organizer)
    assert _route(reply) == ROUTES[attendee]
    # The edit was significant: both invitees got an update.
    assert Delivery.objects.filter(method=Method.REQUEST).count() == 4


def test_a_mail_clients_own_reply_is_recorded_without_anyone_sending_another(
    deliver: Any, sabre: SabreLike, organizer: str
) -> None:
    from calendars.ical import PartStat
    from calendars.models import TransitionSource
    from invitations.rsvp import OrganizerNotice, rsvp_answer_record

    uid = deliver(lambda: _event(sabre, organizer))

    outcome = deliver(
        lambda: rsvp_answer_record(
            uid=uid,
            organizer=organizer,
            attendee=BOB,
            recurrence_id=None,
            partstat=PartStat.ACCEPTED,
            source=TransitionSource.CALDAV_REPLY,
            notify_organizer=False,
        )
    )

    assert outcome.changed and outcome.notice is OrganizerNotice.NONE
    stored = sabre.stored(organizer, uid)
    assert stored is not None and partstats(stored)[None][BOB] == "ACCEPTED"
    assert _replies(organizer) == []


@pytest.mark.parametrize("occurrence", [False, True])
def test_our_reply_lists_only_the_answering_attendee_with_partstat_and_cn(
    client: Client, deliver: Any, sabre: SabreLike, organizer: str, occurrence: bool
) -> None:
    # Issue 13, finding 3: the organizer's stored line carries RSVP and the server's
    # SCHEDULE-STATUS; RFC 6638 section 7.3 forbids SCHEDULE-* in what a client sends, and
    # sabre's own REPLY carries PARTSTAT and CN only.
    start = future(days=10)
    uid = deliver(lambda: _event(sabre, organizer, start=start, rrule="FREQ=WEEKLY;COUNT=3"))
    stored = sabre.stored(organizer, uid)
    assert stored is not None and b"SCHEDULE-STATUS=1.1" in stored.replace(b"\n ", b"")
    answered = start + WEEK if occurrence else None

    deliver(lambda: _answer(client, organizer, uid, CAROL, occurrence=answered))

    [reply] = _replies(organizer)
    assert _route(reply) == CONVOKE
    body = bytes(reply.body)
    for forbidden in (b"SCHEDULE-STATUS", b"SCHEDULE-AGENT", b"SCHEDULE-FORCE-SEND", b"RSVP="):
        assert forbidden not in body.replace(b"\r\n ", b"")
    [event] = icalendar.Calendar.from_ical(body).walk("VEVENT")
    attendee = event["ATTENDEE"]
    assert not isinstance(attendee, list)
    assert str(attendee).lower() == f"mailto:{CAROL}"
    assert dict(attendee.params) == {"PARTSTAT": "ACCEPTED", "CN": "Guest"}
    assert set(event["ORGANIZER"].params) <= {"CN"}
    assert ("RECURRENCE-ID" in event) is occurrence
    assert "RRULE" not in event or not occurrence


@pytest.mark.parametrize(("attendee", "queries"), [(BOB, 4), (CAROL, 16)])
def test_queries_stay_constant_on_either_route(
    client: Client,
    deliver: Any,
    sabre: SabreLike,
    organizer: str,
    attendee: str,
    queries: int,
    django_assert_max_num_queries: Any,
) -> None:
    # Preferences (2), Google booking (1), booking (1); on Convoke's route also the previous
    # REPLY and the REPLY's delivery with its checks (as on plain Radicale).
    uid = deliver(lambda: _event(sabre, organizer))
    with django_assert_max_num_queries(queries):
        assert _answer(client, organizer, uid, attendee).status_code == 200
