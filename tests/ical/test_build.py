"""calendars.ical.build_attachment: METHOD handling, VTIMEZONEs, round trip, and the
sender's own content lines kept for a component that needs no rewriting."""

from __future__ import annotations

import dataclasses
import datetime as dt
from copy import deepcopy
from pathlib import Path

import icalendar
import pytest
import vobject
from icalendar.parser.content_line import Contentlines

from calendars.ical import ICalendarError, Method, build_attachment, parse_itip
from calendars.ical.budgets import component_source
from tests.scheduling.itip import itip_body

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


# --- The sender's own lines -------------------------------------------------------------------


def _content_lines(data: bytes) -> list[str]:
    """The unfolded content lines of an iCalendar text (RFC 5545 section 3.1)."""
    return [str(line) for line in Contentlines.from_ical(data.decode("utf-8")) if line]


def _block(lines: list[str], begin: str = "BEGIN:VEVENT", end: str = "END:VEVENT") -> list[str]:
    start = lines.index(begin)
    return lines[start : lines.index(end, start) + 1]


def _assert_folded(data: bytes) -> None:
    """RFC 5545 section 3.1: CRLF line ends, no physical line over 75 octets, and (UTF-8) no
    character split between two lines."""
    assert data.endswith(b"\r\n")
    assert data.count(b"\n") == data.count(b"\r\n")
    for physical in data.split(b"\r\n"):
        assert len(physical) <= 75, physical
        physical.decode("utf-8")  # raises on a split character


def test_sender_lines_are_kept_as_written_when_a_sabre_event_needs_no_rewriting() -> None:
    # Parameters and properties in the sender's order: icalendar would sort the parameters
    # (CN before ROLE) and write DTSTART first.
    body = itip_body(
        attendees=[(f"guest{n}@example.net", "NEEDS-ACTION") for n in range(3)],
        extra=[
            "ATTENDEE;ROLE=OPT-PARTICIPANT;CN=Zoé Ordre;PARTSTAT=TENTATIVE:mailto:zoe@example.org",
            "DESCRIPTION:Agenda:\\n1. Results\\, by team\\n2. Plans",
        ],
    )
    message = parse_itip(body)

    data = build_attachment(message, itip_enabled=True, method=Method.REQUEST)

    sent = _block(_content_lines(body))
    assert _block(_content_lines(data)) == sent
    for physical in body.split(b"\r\n"):  # the sender folded at 75 octets too
        if physical.startswith((b"UID", b"DTSTART", b"SUMMARY", b"DESCRIPTION")):
            assert b"\r\n" + physical + b"\r\n" in data
    _assert_folded(data)
    assert parse_itip(data).events == message.events


def test_every_event_of_the_sabre_corpus_file_is_sent_byte_for_byte(corpus_dir: Path) -> None:
    body = (corpus_dir / "ics" / "recurring-ical-events__duration_edited.ics").read_bytes()
    message = parse_itip(body)

    data = build_attachment(message, itip_enabled=True, method=Method.REQUEST)

    events = body[body.index(b"BEGIN:VEVENT") : body.rindex(b"END:VEVENT\r\n") + 12]
    assert events in data
    assert parse_itip(data).events == message.events


def test_long_unfolded_description_is_folded_at_75_octets_when_the_sender_did_not_fold() -> None:
    description = ("Réunion ✓ à 10h, café 😀 inclus. " * 12)[:300]
    assert len(description) == 300
    body = vcalendar(
        f"""BEGIN:VEVENT
UID:long@example.org
DTSTART:20260310T100000Z
DTSTAMP:20260301T000000Z
DESCRIPTION:{description.replace(",", "\\,")}
END:VEVENT"""
    )
    assert max(len(line) for line in body.split(b"\r\n")) > 300
    message = parse_itip(body)

    data = build_attachment(message, itip_enabled=True, method=Method.REQUEST)

    _assert_folded(data)
    assert _block(_content_lines(data)) == _block(_content_lines(body))
    assert parse_itip(data).primary.description == description


def test_output_has_crlf_line_ends_when_the_sender_wrote_lf() -> None:
    body = vcalendar(
        """BEGIN:VEVENT
UID:lf@example.org
DTSTART;TZID=Europe/Paris:20260310T100000
DTSTAMP:20260301T000000Z
SUMMARY:Written with LF only
END:VEVENT"""
    ).replace(b"\r\n", b"\n")
    message = parse_itip(body)

    data = build_attachment(message, itip_enabled=True, method=Method.REQUEST)

    _assert_folded(data)
    assert b"\r\nSUMMARY:Written with LF only\r\n" in data
    assert parse_itip(data).events == message.events


def test_component_is_cleaned_not_copied_when_a_value_is_broken_or_a_tzid_unknown() -> None:
    body = vcalendar(
        """BEGIN:VEVENT
UID:broken@example.org
DTSTART:20260310T100000Z
DTSTAMP:20260301T000000Z
CREATED:not-a-date
SUMMARY:Broken creation date
END:VEVENT
BEGIN:VEVENT
UID:nowhere@example.org
DTSTART;TZID=Nowhere Standard Time:20260311T100000
DTSTAMP:20260301T000000Z
SUMMARY:Unknown zone
END:VEVENT"""
    )
    message = parse_itip(body)

    data = build_attachment(message, itip_enabled=True, method=Method.REQUEST)

    assert b"not-a-date" not in data and b"Nowhere" not in data
    assert b"SUMMARY:Broken creation date" in data and b"SUMMARY:Unknown zone" in data
    assert parse_itip(data).events == message.events


@pytest.mark.parametrize(
    ("lines", "unread"),
    [
        # icalendar skips a line it cannot split (handle_line_parse_error).
        (["X-BAD@NAME:icalendar skips this line"], b"X-BAD"),
        # icalendar closes the VALARM whatever the END line names.
        (["BEGIN:VALARM", "ACTION:DISPLAY", "TRIGGER:-PT15M", "END:VTODO"], b"END:VTODO"),
    ],
)
def test_component_is_serialized_again_when_one_of_its_lines_was_not_read_as_written(
    lines: list[str], unread: bytes
) -> None:
    body = vcalendar(
        "\n".join(
            [
                "BEGIN:VEVENT",
                "UID:line@example.org",
                "DTSTART:20260310T100000Z",
                "DTSTAMP:20260301T000000Z",
                *lines,
                "END:VEVENT",
            ]
        )
    )
    message = parse_itip(body)
    [event] = message._calendar.walk("VEVENT")
    source = component_source(event)
    assert source is not None and source.line_error

    data = build_attachment(message, itip_enabled=True, method=Method.REQUEST)

    assert unread not in data
    assert parse_itip(data).events == message.events


@pytest.mark.parametrize(
    ("line", "written"),
    [
        # icalendar strips the white space around "=", RFC 5545 keeps it in the value.
        ("ATTENDEE;CN= Guest ;ROLE=CHAIR:mailto:g@example.org", b"ATTENDEE;CN=Guest;ROLE=CHAIR"),
        # icalendar reads "\;" in a parameter as ";"; for the RFC it ends the parameter.
        (
            "X-APPLE-STRUCTURED-LOCATION;VALUE=URI;X-TITLE=Main St 1\\; Linz:geo:48.3,14.2",
            b'X-TITLE="Main St 1; Linz"',
        ),
    ],
)
def test_component_is_serialized_again_when_a_line_is_outside_the_rfc_grammar(
    line: str, written: bytes
) -> None:
    body = vcalendar(
        f"""BEGIN:VEVENT
UID:grammar@example.org
DTSTART:20260310T100000Z
DTSTAMP:20260301T000000Z
{line}
END:VEVENT"""
    )
    message = parse_itip(body)

    data = build_attachment(message, itip_enabled=True, method=Method.REQUEST)

    assert line.encode() not in data
    assert written in data
    assert parse_itip(data).events == message.events
    assert len(vobject.readOne(data.decode("utf-8")).vevent_list) == 1


@pytest.mark.parametrize(
    "name", ["recurring-ical-events__duration_edited.ics", "allenporter-ical__apple_ical.ics"]
)
def test_attachment_is_the_same_when_the_worker_reads_the_body_again(
    corpus_dir: Path, name: str
) -> None:
    message = parse_itip((corpus_dir / "ics" / name).read_bytes())
    unparsed = dataclasses.replace(message, _calendar=None)

    built = build_attachment(message, itip_enabled=True, method=Method.REQUEST)

    assert build_attachment(unparsed, itip_enabled=True, method=Method.REQUEST) == built


def test_source_lines_span_the_component_and_are_not_copied_with_it() -> None:
    message = parse_itip(itip_body())
    [event] = message._calendar.walk("VEVENT")

    source = component_source(event)

    assert source is not None and not source.line_error
    lines = source.content_lines()
    assert (lines[0], lines[-1]) == ("BEGIN:VEVENT", "END:VEVENT")
    assert component_source(deepcopy(event)) is None
