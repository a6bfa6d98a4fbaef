"""Property tests: generated events round-trip through parse_itip and build_attachment."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calendars.ical import Method, build_attachment, parse_itip

ZONES = sorted(
    {
        "UTC",
        "Europe/Paris",
        "Europe/London",
        "America/New_York",
        "America/Sao_Paulo",
        "Asia/Kolkata",
        "Asia/Kathmandu",
        "Australia/Lord_Howe",
        "Pacific/Chatham",
        "Pacific/Kiritimati",
        "America/St_Johns",
        "Africa/Casablanca",
    }
)
# Windows names Outlook writes, with the IANA zone they stand for.
WINDOWS = {
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Eastern Standard Time": "America/New_York",
    "India Standard Time": "Asia/Kolkata",
    "Tokyo Standard Time": "Asia/Tokyo",
}
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

moments = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2099, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)
durations = st.integers(min_value=0, max_value=60 * 24 * 3).map(lambda m: dt.timedelta(minutes=m))


@st.composite
def rules(draw: st.DrawFn) -> tuple[str, dict]:
    freq = draw(st.sampled_from(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"]))
    parts = {"FREQ": freq}
    expected: dict = {"freq": freq, "interval": 1}
    interval = draw(st.integers(min_value=1, max_value=12))
    if interval > 1:
        parts["INTERVAL"] = str(interval)
        expected["interval"] = interval
    if freq == "WEEKLY" and draw(st.booleans()):
        days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True))
        parts["BYDAY"] = ",".join(days)
        expected["by_day"] = tuple(days)
    if freq == "MONTHLY" and draw(st.booleans()):
        day = draw(st.integers(min_value=1, max_value=28))
        parts["BYMONTHDAY"] = str(day)
        expected["by_month_day"] = (day,)
    end = draw(st.sampled_from(["none", "count", "until"]))
    if end == "count":
        count = draw(st.integers(min_value=1, max_value=500))
        parts["COUNT"] = str(count)
        expected["count"] = count
    elif end == "until":
        until = draw(
            st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 1, 1))
        )
        parts["UNTIL"] = until.strftime("%Y%m%dT%H%M%SZ")
        expected["until"] = until.replace(microsecond=0, tzinfo=dt.UTC)
    return ";".join(f"{k}={v}" for k, v in parts.items()), expected


def body(lines: list[str]) -> bytes:
    wrapped = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Convoke properties//EN",
        "METHOD:REQUEST",
        "BEGIN:VEVENT",
        "UID:generated@example.org",
        "DTSTAMP:20300101T000000Z",
        *lines,
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return ("\r\n".join(wrapped) + "\r\n").encode()


def round_trip(data: bytes):
    message = parse_itip(data)
    for enabled in (True, False):
        again = parse_itip(build_attachment(message, itip_enabled=enabled))
        assert again.events == message.events
        assert again.method is (Method.REQUEST if enabled else None)
    return message.primary


@PROPERTY
@given(moments, durations, st.sampled_from(ZONES))
def test_zoned_times_round_trip(start: dt.datetime, length: dt.timedelta, zone: str) -> None:
    end = start + length
    fmt = "%Y%m%dT%H%M%S"
    if zone == "UTC":
        lines = [f"DTSTART:{start:{fmt}}Z", f"DTEND:{end:{fmt}}Z"]
    else:
        lines = [f"DTSTART;TZID={zone}:{start:{fmt}}", f"DTEND;TZID={zone}:{end:{fmt}}"]
    event = round_trip(body(lines))
    tz = dt.UTC if zone == "UTC" else zoneinfo.ZoneInfo(zone)
    assert event.start == start.replace(tzinfo=tz)
    assert event.start.replace(tzinfo=None) == start  # the wall time as written
    assert event.time_zone == (None if zone == "UTC" else zone)
    assert not event.all_day


@PROPERTY
@given(moments, durations, st.sampled_from(sorted(WINDOWS)))
def test_windows_zone_names_map_to_iana_and_round_trip(
    start: dt.datetime, length: dt.timedelta, windows: str
) -> None:
    fmt = "%Y%m%dT%H%M%S"
    end = start + length
    event = round_trip(
        body([f"DTSTART;TZID={windows}:{start:{fmt}}", f"DTEND;TZID={windows}:{end:{fmt}}"])
    )
    assert event.time_zone == WINDOWS[windows]
    assert event.start == start.replace(tzinfo=zoneinfo.ZoneInfo(WINDOWS[windows]))


@PROPERTY
@given(moments, durations)
def test_floating_times_round_trip(start: dt.datetime, length: dt.timedelta) -> None:
    fmt = "%Y%m%dT%H%M%S"
    event = round_trip(
        body([f"DTSTART:{start:{fmt}}", f"DURATION:PT{int(length.total_seconds())}S"])
    )
    assert event.start == start and event.start.tzinfo is None
    assert event.end == start + length


@PROPERTY
@given(
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 1)),
    st.integers(min_value=1, max_value=30),
)
def test_all_day_spans_round_trip_with_exclusive_end(day: dt.date, days: int) -> None:
    end = day + dt.timedelta(days=days)
    event = round_trip(body([f"DTSTART;VALUE=DATE:{day:%Y%m%d}", f"DTEND;VALUE=DATE:{end:%Y%m%d}"]))
    assert event.all_day
    assert (event.start, event.end) == (day, end)
    assert (event.end - event.start).days == days


@PROPERTY
@given(moments, st.sampled_from(ZONES), rules())
def test_recurrence_rules_round_trip(start: dt.datetime, zone: str, rule: tuple[str, dict]) -> None:
    text, expected = rule
    fmt = "%Y%m%dT%H%M%S"
    start_line = (
        f"DTSTART:{start:{fmt}}Z" if zone == "UTC" else f"DTSTART;TZID={zone}:{start:{fmt}}"
    )
    event = round_trip(body([start_line, f"RRULE:{text}"]))
    assert event.rrule is not None
    for name, value in expected.items():
        assert getattr(event.rrule, name) == value, (name, text)
