"""calendars.ical.parse_itip: real captured data first, invented cases for the edges."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from calendars.ical import (
    Attendee,
    ICalendarError,
    Method,
    Organizer,
    PartStat,
    parse_itip,
)

from .samples import vcalendar


def corpus_files() -> list[Path]:
    from tests.conftest import CORPUS_DIR

    folder = CORPUS_DIR / "ics"
    return sorted(folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_file_parses_or_raises_icalendar_error_when_parsed(
    corpus_dir: Path, path: Path
) -> None:
    try:
        message = parse_itip(path.read_bytes())
    except ICalendarError as exc:
        text = str(exc)
        assert text and "\n" not in text and len(text) < 400
        return
    assert message.events
    assert message.primary in message.events
    for event in message.events:
        assert isinstance(event.uid, str)
        start, end = event.start, event.end
        if (
            isinstance(start, dt.datetime)
            and isinstance(end, dt.datetime)
            and (start.tzinfo is None) == (end.tzinfo is None)
        ):
            assert end >= start


def test_corpus_has_files_that_parse_and_files_that_do_not_when_read(corpus_dir: Path) -> None:
    outcomes = {"ok": 0, "error": 0}
    for path in corpus_files():
        try:
            parse_itip(path.read_bytes())
            outcomes["ok"] += 1
        except ICalendarError:
            outcomes["error"] += 1
    assert outcomes["ok"] > 100 and outcomes["error"] > 20


def test_outlook_windows_zone_maps_to_iana_when_vtimezone_names_windows_zone(
    corpus_dir: Path,
) -> None:
    message = parse_itip((corpus_dir / "ics" / "nylas__windows_event.ics").read_bytes())
    event = message.primary
    assert message.method is Method.REQUEST
    assert event.time_zone == "Europe/Paris"
    assert event.tzid == "Romance Standard Time"
    assert event.start == dt.datetime(2015, 2, 20, 9, 30, tzinfo=ZoneInfo("Europe/Paris"))
    assert event.end == dt.datetime(2015, 2, 20, 10, 0, tzinfo=ZoneInfo("Europe/Paris"))
    assert event.sequence == 4
    assert event.summary == "Pommes"
    # ORGANIZER is written MAILTO: in capitals by Exchange.
    assert event.organizer == Organizer(
        address="inbox.apptest2@inboxapp.onmicrosoft.com", name="Inbox Apptest2"
    )
    # The ATTENDEE's CN is folded in the middle of a word.
    assert event.attendees == (
        Attendee(
            address="karim@nilas.com",
            name="Karim Hamidou",
            partstat=PartStat.NEEDS_ACTION,
            role="REQ-PARTICIPANT",
            rsvp=True,
        ),
    )


def test_master_and_override_are_told_apart_when_google_sends_a_recurring_event(
    corpus_dir: Path,
) -> None:
    message = parse_itip(
        (corpus_dir / "ics" / "allenporter-ical__recurring_with_single_change.ics").read_bytes()
    )
    assert message.master is not None and message.master.recurrence_id is None
    assert message.master.rrule is not None
    assert message.overrides and all(e.uid == message.uid for e in message.overrides)
    assert message.primary is message.master


def test_primary_is_the_first_override_when_there_is_no_master() -> None:
    body = vcalendar(
        """BEGIN:VEVENT
UID:only-one@example.org
RECURRENCE-ID;TZID=Europe/Paris:20260310T100000
DTSTART;TZID=Europe/Paris:20260310T110000
DTEND;TZID=Europe/Paris:20260310T120000
DTSTAMP:20260301T000000Z
SEQUENCE:2
SUMMARY:Moved
END:VEVENT""",
        method="CANCEL",
    )
    message = parse_itip(body)
    assert message.master is None
    assert message.primary.recurrence_id == dt.datetime(
        2026, 3, 10, 10, tzinfo=ZoneInfo("Europe/Paris")
    )
    assert message.uid == "only-one@example.org"


def test_line_ends_folding_and_bom_are_accepted_when_body_uses_lf() -> None:
    crlf = vcalendar(
        """BEGIN:VEVENT
UID:fold@example.org
DTSTART:20260310T100000Z
DTEND:20260310T110000Z
DTSTAMP:20260301T000000Z
ORGANIZER;CN=Org:mailto:organi
 zer@Example.ORG
ATTENDEE;CN=Al;PARTSTAT=ACCEPTED:MAILTO:al
 ice@example.net
SUMMARY:Folded
END:VEVENT"""
    )
    lf = crlf.replace(b"\r\n", b"\n")
    with_bom = b"\xef\xbb\xbf" + crlf
    parsed = [parse_itip(b) for b in (crlf, lf, with_bom)]
    assert parsed[0].events == parsed[1].events == parsed[2].events
    event = parsed[0].primary
    assert event.organizer == Organizer(address="organizer@example.org", name="Org")
    assert event.attendees[0].address == "alice@example.net"
    assert event.attendees[0].partstat is PartStat.ACCEPTED


def test_duration_gives_end_when_dtend_is_absent() -> None:
    message = parse_itip(
        vcalendar(
            """BEGIN:VEVENT
UID:d@example.org
DTSTART;TZID=America/New_York:20261101T010000
DURATION:PT90M
DTSTAMP:20260301T000000Z
END:VEVENT"""
        )
    )
    event = message.primary
    assert event.end - event.start == dt.timedelta(minutes=90)
    assert event.time_zone == "America/New_York"


def test_all_day_end_is_exclusive_and_defaults_to_one_day_when_dtend_is_absent() -> None:
    message = parse_itip(
        vcalendar(
            """BEGIN:VEVENT
UID:a@example.org
DTSTART;VALUE=DATE:20260704
DTSTAMP:20260301T000000Z
END:VEVENT
BEGIN:VEVENT
UID:b@example.org
DTSTART;VALUE=DATE:20260704
DTEND;VALUE=DATE:20260707
DTSTAMP:20260301T000000Z
END:VEVENT"""
        )
    )
    one, three = message.events
    assert one.all_day and one.start == dt.date(2026, 7, 4) and one.end == dt.date(2026, 7, 5)
    assert three.all_day and three.end == dt.date(2026, 7, 7)


def test_x_wr_timezone_places_floating_times_when_calendar_names_a_zone() -> None:
    message = parse_itip(
        vcalendar(
            """BEGIN:VEVENT
UID:x@example.org
DTSTART:20261201T090000
DTEND:20261201T100000
DTSTAMP:20260301T000000Z
END:VEVENT""",
            extra="X-WR-TIMEZONE:Europe/Amsterdam",
        )
    )
    event = message.primary
    assert event.time_zone == "Europe/Amsterdam"
    assert event.start == dt.datetime(2026, 12, 1, 9, tzinfo=ZoneInfo("Europe/Amsterdam"))


def test_floating_time_stays_naive_when_nothing_names_a_zone() -> None:
    event = parse_itip(
        vcalendar(
            """BEGIN:VEVENT
UID:f@example.org
DTSTART:20261201T090000
DTSTAMP:20260301T000000Z
END:VEVENT"""
        )
    ).primary
    assert event.start == dt.datetime(2026, 12, 1, 9) and event.time_zone is None


def test_globally_unique_tzid_uses_its_iana_suffix_when_prefixed_by_a_vendor() -> None:
    event = parse_itip(
        vcalendar(
            """BEGIN:VEVENT
UID:g@example.org
DTSTART;TZID=/mozilla.org/20050126_1/Europe/Berlin:20260310T100000
DTSTAMP:20260301T000000Z
END:VEVENT"""
        )
    ).primary
    assert event.time_zone == "Europe/Berlin"


def test_custom_vtimezones_with_the_same_tzid_are_not_confused_when_parsed_in_turn() -> None:
    def body(offset: str) -> bytes:
        return vcalendar(
            f"""BEGIN:VTIMEZONE
TZID:Customized Time Zone
BEGIN:STANDARD
DTSTART:16010101T000000
TZOFFSETFROM:{offset}
TZOFFSETTO:{offset}
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:c@example.org
DTSTART;TZID=Customized Time Zone:20260310T100000
DTSTAMP:20260301T000000Z
END:VEVENT"""
        )

    first = parse_itip(body("+0300")).primary.start
    second = parse_itip(body("-0500")).primary.start
    assert first.utcoffset() == dt.timedelta(hours=3)
    assert second.utcoffset() == dt.timedelta(hours=-5)


def test_recurrence_rule_is_structured_when_event_repeats() -> None:
    event = parse_itip(
        vcalendar(
            """BEGIN:VEVENT
UID:r@example.org
DTSTART;TZID=Europe/Paris:20260303T140000
DTSTAMP:20260301T000000Z
RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;UNTIL=20260630T215959Z;WKST=MO
EXDATE;TZID=Europe/Paris:20260310T140000,20260317T140000
RDATE;TZID=Europe/Paris:20260401T140000
END:VEVENT"""
        )
    ).primary
    rule = event.rrule
    assert rule is not None
    assert (rule.freq, rule.interval, rule.by_day, rule.week_start) == (
        "WEEKLY",
        2,
        ("TU", "TH"),
        "MO",
    )
    assert rule.until == dt.datetime(2026, 6, 30, 21, 59, 59, tzinfo=dt.UTC)
    assert "FREQ=WEEKLY" in str(rule)
    paris = ZoneInfo("Europe/Paris")
    assert event.exdates == (
        dt.datetime(2026, 3, 10, 14, tzinfo=paris),
        dt.datetime(2026, 3, 17, 14, tzinfo=paris),
    )
    assert event.rdates == (dt.datetime(2026, 4, 1, 14, tzinfo=paris),)


def test_unknown_partstat_is_kept_as_text_when_it_is_an_x_name() -> None:
    event = parse_itip(
        vcalendar(
            """BEGIN:VEVENT
UID:p@example.org
DTSTART:20260310T100000Z
DTSTAMP:20260301T000000Z
ATTENDEE;PARTSTAT=X-MAYBE;ROLE=opt-participant:mailto:x@example.net
END:VEVENT"""
        )
    ).primary
    assert event.attendees[0].partstat == "X-MAYBE"
    assert event.attendees[0].role == "OPT-PARTICIPANT"
    assert event.attendees[0].rsvp is False


def test_only_web_links_are_kept_when_url_or_conference_is_not_http() -> None:
    event = parse_itip(
        vcalendar(
            """BEGIN:VEVENT
UID:u@example.org
DTSTART:20260310T100000Z
DTSTAMP:20260301T000000Z
URL:javascript:alert(1)
X-GOOGLE-CONFERENCE:https://meet.google.com/abc-defg-hij
END:VEVENT"""
        )
    ).primary
    assert event.url == ""
    assert event.conference_url == "https://meet.google.com/abc-defg-hij"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "expected BEGIN:VCALENDAR"),
        (b"hello world", "expected BEGIN:VCALENDAR"),
        (b"BEGIN:VEVENT\r\nEND:VEVENT\r\n", "expected BEGIN:VCALENDAR"),
        (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n", "no VEVENT component"),
        (
            b"BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:t\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
            "no VEVENT component (found VTODO)",
        ),
        (b"BEGIN:VCALENDAR\r\nSUMMARY:caf\xe9\r\nEND:VCALENDAR\r\n", "line 2: byte 0xE9"),
        (b"BEGIN:VCALENDAR\r\nX\x00\r\nEND:VCALENDAR\r\n", "NUL byte"),
        (b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\n", "incomplete: no END:VCALENDAR"),
        (
            b"BEGIN:VCALENDAR\r\nMETHOD:PUBLISHX\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\n"
            b"END:VCALENDAR\r\n",
            "METHOD 'PUBLISHX' is not an iTIP method",
        ),
        (
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:a\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:b\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            "2 VCALENDAR objects",
        ),
        (
            b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nSUMMARY:Lunch\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
            "a VEVENT ('Lunch') has no UID",
        ),
    ],
)
def test_clear_error_when_body_is_not_usable(body: bytes, expected: str) -> None:
    with pytest.raises(ICalendarError) as info:
        parse_itip(body)
    assert expected in str(info.value)


def test_error_names_line_and_value_when_dtstart_is_invalid() -> None:
    body = vcalendar(
        """BEGIN:VEVENT
UID:bad@example.org
DTSTAMP:20260301T000000Z
DTSTART:2026130T
END:VEVENT"""
    )
    with pytest.raises(ICalendarError) as info:
        parse_itip(body)
    assert str(info.value) == "line 8: DTSTART has an invalid date-time '2026130T'"


def test_error_when_dtend_is_before_dtstart() -> None:
    body = vcalendar(
        """BEGIN:VEVENT
UID:bad@example.org
DTSTART:20260310T100000Z
DTEND:20260310T090000Z
END:VEVENT"""
    )
    with pytest.raises(ICalendarError, match="DTEND is before DTSTART"):
        parse_itip(body)


def test_error_when_sequence_is_not_a_number() -> None:
    body = vcalendar(
        """BEGIN:VEVENT
UID:bad@example.org
DTSTART:20260310T100000Z
SEQUENCE:two
END:VEVENT"""
    )
    with pytest.raises(ICalendarError, match="SEQUENCE must be a whole number"):
        parse_itip(body)


def test_ten_thousand_attendees_are_read_when_message_is_large() -> None:
    attendees = "\n".join(f"ATTENDEE;CN=P{i}:mailto:p{i}@example.net" for i in range(10_000))
    body = vcalendar(
        f"""BEGIN:VEVENT
UID:big@example.org
DTSTART:20260310T100000Z
DTSTAMP:20260301T000000Z
{attendees}
END:VEVENT"""
    )
    event = parse_itip(body).primary
    assert len(event.attendees) == 10_000
    assert event.attendee("MAILTO:P9999@example.net") == event.attendees[-1]


def test_custom_zone_named_after_a_city_is_recognised_when_offsets_match(
    corpus_dir: Path,
) -> None:
    # Exchange: TZID "(UTC+07:00) Bangkok, Hanoi, Jakarta" with its own VTIMEZONE.
    event = parse_itip((corpus_dir / "ics" / "node-ical__exchange-custom-tz.ics").read_bytes())
    assert event.primary.time_zone == "Asia/Bangkok"
    assert event.primary.start.utcoffset() == dt.timedelta(hours=7)


def test_custom_zone_without_a_matching_city_keeps_no_iana_name() -> None:
    event = parse_itip(
        vcalendar(
            """BEGIN:VTIMEZONE
TZID:Sydney but wrong offsets
BEGIN:STANDARD
DTSTART:16010101T000000
TZOFFSETFROM:+0300
TZOFFSETTO:+0300
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:c@example.org
DTSTART;TZID=Sydney but wrong offsets:20260310T100000
END:VEVENT"""
        )
    ).primary
    assert event.time_zone is None
    assert event.tzid == "Sydney but wrong offsets"


def test_parsing_from_many_threads_at_once_gives_the_same_events() -> None:
    from concurrent.futures import ThreadPoolExecutor

    def body(minutes: int) -> bytes:
        offset = f"+{minutes // 60:02d}{minutes % 60:02d}"
        return vcalendar(
            f"""BEGIN:VTIMEZONE
TZID:Customized Time Zone
BEGIN:STANDARD
DTSTART:16010101T000000
TZOFFSETFROM:{offset}
TZOFFSETTO:{offset}
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:t{minutes}@example.org
DTSTART;TZID=Customized Time Zone:20260310T100000
END:VEVENT"""
        )

    # 300 distinct definitions, more than the cache keeps (256): threads also evict entries
    # while others read.
    bodies = [body(minutes) for minutes in range(300)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        offsets = list(pool.map(lambda b: parse_itip(b).primary.start.utcoffset(), bodies))
    assert offsets == [dt.timedelta(minutes=minutes) for minutes in range(300)]


def test_properties_and_parameters_are_read_whatever_their_case_when_written_in_lower_case() -> (
    None
):
    # RFC 5545 3.1: names are case-insensitive. The reader looks them up by their upper-cased
    # names in plain dicts (issue 14), which holds because icalendar stores them upper-cased.
    upper = """BEGIN:VEVENT
UID:case@example.org
DTSTAMP:20260301T000000Z
SEQUENCE:3
SUMMARY:Case
DTSTART;TZID=Europe/Paris:20260310T100000
DTEND;TZID=Europe/Paris:20260310T110000
RRULE:FREQ=WEEKLY;UNTIL=20260331T000000Z
EXDATE;TZID=Europe/Paris:20260317T100000
URL:https://example.org/case
CONFERENCE;VALUE=URI:https://visio.example.org/case
STATUS:CONFIRMED
ORGANIZER;CN=Org Anizer:mailto:org@example.org
ATTENDEE;CN=Bob Durand;PARTSTAT=ACCEPTED;ROLE=OPT-PARTICIPANT;RSVP=TRUE:mailto:bob@example.net
END:VEVENT"""
    lower = """BEGIN:VEVENT
uid:case@example.org
dtstamp:20260301T000000Z
sequence:3
summary:Case
dtstart;tzid=Europe/Paris:20260310T100000
dtend;tzid=Europe/Paris:20260310T110000
rrule:FREQ=WEEKLY;UNTIL=20260331T000000Z
exdate;tzid=Europe/Paris:20260317T100000
url:https://example.org/case
conference;value=URI:https://visio.example.org/case
status:CONFIRMED
organizer;cn=Org Anizer:mailto:org@example.org
attendee;cn=Bob Durand;partstat=ACCEPTED;role=OPT-PARTICIPANT;rsvp=TRUE:mailto:bob@example.net
END:VEVENT"""
    expected = parse_itip(vcalendar(upper)).primary
    event = parse_itip(vcalendar(lower)).primary
    assert event == expected
    assert event.tzid == "Europe/Paris"
    assert event.sequence == 3
    assert event.exdates == (dt.datetime(2026, 3, 17, 10, tzinfo=ZoneInfo("Europe/Paris")),)
    assert event.rrule is not None and event.rrule.freq == "WEEKLY"
    assert event.conference_url == "https://visio.example.org/case"
    assert event.organizer == Organizer(address="org@example.org", name="Org Anizer")
    assert event.attendees == (
        Attendee(
            address="bob@example.net",
            name="Bob Durand",
            partstat=PartStat.ACCEPTED,
            role="OPT-PARTICIPANT",
            rsvp=True,
        ),
    )
