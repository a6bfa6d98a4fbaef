"""The sabre-like CalDAV server follows the contract (docs/messages-and-caldav.md) where the
other tests rely on it: authentication, and which scheduling messages each write causes."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import icalendar
import pytest
import requests

from tests.fakes.sabre import SabreLike
from tests.invitations.rsvp_support import event_body, partstats

BOB = "bob@local.example.org"  # a user of the server
CAROL = "carol@example.net"  # not a user


def _event(sabre: SabreLike, organizer: str) -> str:
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    sabre.event_store(
        organizer,
        event_body(
            uid=uid,
            organizer=organizer,
            attendees=[(BOB, "NEEDS-ACTION"), (CAROL, "NEEDS-ACTION")],
        ),
    )
    return uid


def partstat_set(address: str, value: str) -> Callable[[bytes], bytes]:
    """A calendar client's edit: ``address``'s PARTSTAT becomes ``value`` everywhere."""

    def edit(data: bytes) -> bytes:
        calendar = icalendar.Calendar.from_ical(data)
        for event in calendar.walk("VEVENT"):
            listed = event.get("ATTENDEE", [])
            for attendee in listed if isinstance(listed, list) else [listed]:
                if str(attendee).lower() == f"mailto:{address}":
                    attendee.params["PARTSTAT"] = value
        return bytes(calendar.to_ical())

    return edit


def _taken(sabre: SabreLike) -> list[tuple[str, str, str]]:
    return [(c.method, c.sender, c.recipient) for c in sabre.callbacks_take()]


@pytest.fixture
def organizer(sabre: SabreLike) -> str:
    sabre.user_add(BOB)
    return sabre.user_add()


def test_only_the_api_key_with_a_user_is_let_in(sabre: SabreLike) -> None:
    assert requests.request("PROPFIND", sabre.url, timeout=5).status_code == 401
    basic = requests.request("PROPFIND", sabre.url, auth=("bob", "pw"), timeout=5)
    assert basic.status_code == 401
    wrong = {"X-Api-Key": "wrong", "X-Forwarded-User": BOB}
    assert requests.request("PROPFIND", sabre.url, headers=wrong, timeout=5).status_code == 401
    good = {"X-Api-Key": sabre.api_key, "X-Forwarded-User": BOB}
    options = requests.options(sabre.url, headers=good, timeout=5)
    assert "calendar-auto-schedule" in options.headers["DAV"]


def test_a_new_event_sends_a_request_to_every_attendee_and_delivers_locally(
    sabre: SabreLike, organizer: str
) -> None:
    uid = _event(sabre, organizer)

    assert sorted(_taken(sabre)) == [("REQUEST", organizer, BOB), ("REQUEST", organizer, CAROL)]
    bobs = sabre.stored(BOB, uid)
    assert bobs is not None and partstats(bobs)[None][BOB] == "NEEDS-ACTION"
    stored = sabre.stored(organizer, uid)
    assert stored is not None
    statuses = {
        str(a).removeprefix("mailto:"): a.params["SCHEDULE-STATUS"]
        for a in icalendar.Calendar.from_ical(stored).walk("VEVENT")[0]["ATTENDEE"]
    }
    assert statuses == {BOB: "1.2", CAROL: "1.1"}


def test_an_attendee_changing_their_copy_sends_a_reply_and_updates_the_organizer(
    sabre: SabreLike, organizer: str
) -> None:
    uid = _event(sabre, organizer)
    sabre.callbacks_take()

    sabre.event_edit(
        BOB, uid, lambda data: data.replace(b"PARTSTAT=NEEDS-ACTION", b"PARTSTAT=ACCEPTED", 1)
    )

    [reply] = sabre.callbacks_take()
    assert (reply.method, reply.sender, reply.recipient) == ("REPLY", BOB, organizer)
    [event] = icalendar.Calendar.from_ical(reply.body).walk("VEVENT")
    [attendee] = [event["ATTENDEE"]]
    assert str(attendee) == f"mailto:{BOB}"
    assert set(attendee.params) == {"PARTSTAT", "CN"}
    assert attendee.params["PARTSTAT"] == "ACCEPTED"
    stored = sabre.stored(organizer, uid)
    assert stored is not None and partstats(stored)[None][BOB] == "ACCEPTED"


def test_partstat_written_into_the_organizers_copy_sends_nothing(
    sabre: SabreLike, organizer: str
) -> None:
    uid = _event(sabre, organizer)
    sabre.callbacks_take()

    sabre.event_edit(organizer, uid, partstat_set(CAROL, "ACCEPTED"))

    stored = sabre.stored(organizer, uid)
    assert stored is not None and partstats(stored)[None][CAROL] == "ACCEPTED"
    assert _taken(sabre) == []


def test_an_added_attendee_gets_the_current_sequence_and_the_others_nothing(
    sabre: SabreLike, organizer: str
) -> None:
    uid = f"{uuid.uuid4().hex}@dav.example.org"
    sabre.event_store(
        organizer,
        event_body(uid=uid, organizer=organizer, attendees=[(BOB, "NEEDS-ACTION")], sequence=2),
    )
    sabre.callbacks_take()

    sabre.event_edit(
        organizer,
        uid,
        lambda data: data.replace(
            b"END:VEVENT",
            f"ATTENDEE;CN=Carol;PARTSTAT=NEEDS-ACTION:mailto:{CAROL}\r\nEND:VEVENT".encode(),
        ),
    )

    [request] = sabre.callbacks_take()
    assert (request.method, request.recipient) == ("REQUEST", CAROL)
    assert icalendar.Calendar.from_ical(request.body).walk("VEVENT")[0]["SEQUENCE"] == 2


def test_deleting_the_event_cancels_it_for_everyone_with_a_bumped_sequence(
    sabre: SabreLike, organizer: str
) -> None:
    uid = _event(sabre, organizer)
    sabre.callbacks_take()

    sabre.event_delete(organizer, uid)

    cancels = sabre.callbacks_take()
    assert sorted((c.method, c.recipient) for c in cancels) == [("CANCEL", BOB), ("CANCEL", CAROL)]
    for cancel in cancels:
        assert icalendar.Calendar.from_ical(cancel.body).walk("VEVENT")[0]["SEQUENCE"] == 1
    bobs = sabre.stored(BOB, uid)
    assert bobs is not None and b"STATUS:CANCELLED" in bobs


def test_a_stored_object_with_method_is_refused(sabre: SabreLike, organizer: str) -> None:
    body = event_body(
        uid="x@y", organizer=organizer, attendees=[(BOB, "NEEDS-ACTION")], method="REQUEST"
    )
    with pytest.raises(requests.HTTPError) as refused:
        sabre.event_store(organizer, body)
    assert refused.value.response.status_code == 415
