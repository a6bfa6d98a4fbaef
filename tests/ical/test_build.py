"""calendars.ical.build_attachment: METHOD handling, VTIMEZONEs, round trip."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import icalendar
import pytest
import vobject

from calendars.ical import ICalendarError, Method, build_attachment, parse_itip

from .samples import vcalendar
from .test_parse import corpus_files


def parseable_corpus_files() -> list[Path]:
    """Corpus files that parse (the others are covered by test_parse)."""
    found = []
    for path in corpus_files():
        try:
            parse_itip(path.read_bytes())
        except ICalendarError:
            continue
        found.append(path)
    return found


def _tzids_used(calendar: icalendar.Calendar) -> set[str]:
    return calendar.get_used_tzids() - {"UTC"}


@pytest.mark.parametrize("path", parseable_corpus_files(), ids=lambda p: p.name)
def test_attachment_round_trips_and_defines_every_tzid_when_built_from_corpus(
    corpus_dir: Path, path: Path
) -> None:
    message = parse_itip(path.read_bytes())
    for enabled in (True, False):
        data = build_attachment(message, itip_enabled=enabled, method=Method.REQUEST)
        again = parse_itip(data)
        assert again.events == message.events
        assert again.method is (Method.REQUEST if enabled else None)
        calendar = icalendar.Calendar.from_ical(data)
        assert _tzids_used(calendar) <= {tz.tz_name for tz in calendar.timezones}
    # An independent parser reads it too.
    parsed = vobject.readOne(data.decode("utf-8"))
    assert len(parsed.vevent_list) == len(message.events)


def test_method_follows_the_message_when_itip_is_enabled() -> None:
    message = parse_itip(
        vcalendar(
            """BEGIN:VEVENT
UID:m@example.org
DTSTART:20260310T100000Z
DTSTAMP:20260301T000000Z
END:VEVENT""",
            method="CANCEL",
        )
    )
    with_method = build_attachment(message, itip_enabled=True)
    without = build_attachment(message, itip_enabled=False)
    assert b"\r\nMETHOD:CANCEL\r\n" in with_method
    assert b"METHOD" not in without
    assert parse_itip(with_method).method is Method.CANCEL
    assert parse_itip(without).method is None


def test_missing_vtimezone_is_added_when_event_uses_an_iana_tzid() -> None:
    message = parse_itip(
        vcalendar(
            """BEGIN:VEVENT
UID:tz@example.org
DTSTART;TZID=Europe/Paris:20260310T100000
DTEND;TZID=America/New_York:20260310T070000
DTSTAMP:20260301T000000Z
END:VEVENT"""
        )
    )
    calendar = icalendar.Calendar.from_ical(build_attachment(message, itip_enabled=True))
    assert {tz.tz_name for tz in calendar.timezones} == {"Europe/Paris", "America/New_York"}


def test_unknown_tzid_is_dropped_so_times_stay_floating_when_nothing_defines_it() -> None:
    message = parse_itip(
        vcalendar(
            """BEGIN:VEVENT
UID:tz@example.org
DTSTART;TZID=Nowhere Standard Time:20260310T100000
DTSTAMP:20260301T000000Z
END:VEVENT"""
        )
    )
    assert message.primary.start == dt.datetime(2026, 3, 10, 10)
    data = build_attachment(message, itip_enabled=True)
    assert b"Nowhere" not in data
    assert parse_itip(data).events == message.events


def test_windows_tzid_gets_a_definition_when_outlook_left_it_out() -> None:
    message = parse_itip(
        vcalendar(
            """BEGIN:VEVENT
UID:win@example.org
DTSTART;TZID=W. Europe Standard Time:20260710T100000
DTSTAMP:20260301T000000Z
END:VEVENT"""
        )
    )
    data = build_attachment(message, itip_enabled=True)
    calendar = icalendar.Calendar.from_ical(data)
    assert _tzids_used(calendar) <= {tz.tz_name for tz in calendar.timezones}
    assert parse_itip(data).primary.start == message.primary.start
