"""calendars.ical.reply_build: the REPLY Convoke sends an organizer (RFC 5546 section 3.2.3)."""

from __future__ import annotations

import datetime as dt

import icalendar
import pytest

from calendars.ical import NotAnAttendee, reply_build

STORED = (
    b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Sabre//Sabre VObject 4.6.0//EN\r\n"
    b"BEGIN:VEVENT\r\nUID:r-1@example.org\r\nDTSTAMP:20261101T090000Z\r\n"
    b"DTSTART:20301001T090000Z\r\nDTEND:20301001T100000Z\r\nSEQUENCE:2\r\nSUMMARY:Review\r\n"
    b"RRULE:FREQ=WEEKLY;COUNT=4\r\n"
    b"ORGANIZER;CN=Alice;SCHEDULE-AGENT=SERVER:mailto:alice@example.org\r\n"
    b"ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED;ROLE=REQ-PARTICIPANT;RSVP=TRUE;SCHEDULE-STATUS=1.2;"
    b"SCHEDULE-FORCE-SEND=REQUEST:mailto:bob@example.net\r\n"
    b"ATTENDEE;CN=Carol;PARTSTAT=DECLINED;SCHEDULE-STATUS=1.1:mailto:carol@example.net\r\n"
    b"END:VEVENT\r\n"
    b"BEGIN:VEVENT\r\nUID:r-1@example.org\r\nDTSTAMP:20261101T090000Z\r\n"
    b"RECURRENCE-ID:20301008T090000Z\r\nDTSTART:20301008T110000Z\r\nDTEND:20301008T120000Z\r\n"
    b"SEQUENCE:2\r\nSUMMARY:Review\r\nORGANIZER;CN=Alice:mailto:alice@example.org\r\n"
    b"ATTENDEE;PARTSTAT=TENTATIVE;RSVP=TRUE;SCHEDULE-STATUS=2.0:mailto:bob@example.net\r\n"
    b"END:VEVENT\r\nEND:VCALENDAR\r\n"
)


def _event(body: bytes) -> icalendar.Event:
    [event] = icalendar.Calendar.from_ical(body).walk("VEVENT")
    return event


def test_reply_lists_only_the_answering_attendee_with_partstat_and_cn() -> None:
    body = reply_build(STORED, attendee="bob@example.net", recurrence_id=None)

    event = _event(body)
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:bob@example.net"
    assert dict(attendee.params) == {"PARTSTAT": "ACCEPTED", "CN": "Bob"}
    assert dict(event["ORGANIZER"].params) == {"CN": "Alice"}
    assert "RECURRENCE-ID" not in event and event["SEQUENCE"] == 2
    for forbidden in (b"SCHEDULE-", b"RSVP=", b"ROLE=", b"carol"):
        assert forbidden not in body


def test_reply_for_one_occurrence_carries_its_recurrence_id_and_its_answer() -> None:
    body = reply_build(STORED, attendee="bob@example.net", recurrence_id="20301008T090000Z")

    event = _event(body)
    assert event["RECURRENCE-ID"].dt == dt.datetime(2030, 10, 8, 9, tzinfo=dt.UTC)
    assert dict(event["ATTENDEE"].params) == {"PARTSTAT": "TENTATIVE"}
    assert b"SCHEDULE-" not in body and b"RSVP=" not in body


def test_reply_refuses_an_address_that_is_not_an_attendee() -> None:
    with pytest.raises(NotAnAttendee):
        reply_build(STORED, attendee="bo@example.net", recurrence_id=None)
