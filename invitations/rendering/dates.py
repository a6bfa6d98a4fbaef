"""Dates and times in the recipient's language and time zone (issue: dates shown to people).

Every word comes from translations.json (``date.*`` keys), so an operator's copy can change
them. Timed events are converted to the recipient's zone and name it ("14:00 - 15:00
(Europe/Paris)"); the event's own zone is given too when it is another one. All-day events
are dates, never converted, and DTEND is exclusive (RFC 5545 section 3.6.1). Floating times
are shown as written and called local time.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass

from calendars.ical import Event
from calendars.translations import register_keys, translate

WEEKDAY_CODES = ("mo", "tu", "we", "th", "fr", "sa", "su")

register_keys(
    [f"date.weekday.{code}" for code in WEEKDAY_CODES]
    + [f"date.month.{n}" for n in range(1, 13)]
    + [
        "date.day_first",
        "date.format.date",
        "date.format.day_month",
        "date.format.day_month_year",
        "date.format.time",
        "date.format.same_day",
        "date.format.instant",
        "date.format.span",
        "date.format.all_day",
        "date.format.all_day_span",
        "date.format.with_zone",
        "date.zone.floating",
        "date.zone.utc",
        "email.no_time",
    ]
)


def _day(number: int, language: str) -> str:
    return translate("date.day_first", language) if number == 1 else str(number)


def date_text(day: dt.date, language: str) -> str:
    """``Tuesday 10 March 2026`` / ``mardi 10 mars 2026`` / ``Dienstag, 10. März 2026``."""
    return translate(
        "date.format.date",
        language,
        weekday=translate(f"date.weekday.{WEEKDAY_CODES[day.weekday()]}", language),
        day=_day(day.day, language),
        month=translate(f"date.month.{day.month}", language),
        year=day.year,
    )


def day_month_text(day: dt.date, language: str, *, year: bool = False) -> str:
    """``3 March`` (or ``3 March 2026`` with ``year``), for rules and short mentions."""
    return translate(
        "date.format.day_month_year" if year else "date.format.day_month",
        language,
        day=_day(day.day, language),
        month=translate(f"date.month.{day.month}", language),
        year=day.year,
    )


def time_text(moment: dt.datetime | dt.time, language: str) -> str:
    return translate(
        "date.format.time", language, hour=f"{moment.hour:02d}", minute=f"{moment.minute:02d}"
    )


def zone_label(moment: dt.datetime, event: Event | None = None) -> str:
    """The name a reader sees for the zone of an aware ``moment``."""
    tzinfo = moment.tzinfo
    if isinstance(tzinfo, zoneinfo.ZoneInfo):
        return tzinfo.key
    if tzinfo is dt.UTC:
        return "UTC"
    if event is not None and event.time_zone:
        return event.time_zone  # a custom VTIMEZONE recognised as this IANA zone
    if event is not None and event.tzid:
        return " ".join(event.tzid.split())[:80]
    offset = moment.utcoffset() or dt.timedelta(0)
    sign = "-" if offset < dt.timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def moment_text(
    value: dt.date | dt.datetime, *, zone: str | None, language: str, with_zone: bool = True
) -> str:
    """One date or date-time (an occurrence's RECURRENCE-ID, an EXDATE) for a reader."""
    if not isinstance(value, dt.datetime):
        return date_text(value, language)
    if value.tzinfo is not None and zone:
        value = value.astimezone(zoneinfo.ZoneInfo(zone))
    text = translate(
        "date.format.instant",
        language,
        date=date_text(value.date(), language),
        time=time_text(value, language),
    )
    if not with_zone:
        return text
    label = zone_label(value) if value.tzinfo is not None else None
    return translate(
        "date.format.with_zone",
        language,
        when=text,
        zone=label or translate("date.zone.floating", language),
    )


@dataclass(frozen=True)
class When:
    """How an event's time reads: in the recipient's zone, and in the event's own when other.

    ``start`` is the start as shown (converted), for tests and the plain-text part.
    """

    text: str
    original: str | None
    start: dt.date | dt.datetime | None


def when_text(event: Event, *, zone: str | None, language: str) -> When:
    """The event's time for a reader in ``zone`` (IANA name; None keeps the event's own)."""
    start, end = event.start, event.end
    if start is None:
        return When(text=translate("email.no_time", language), original=None, start=None)
    if not isinstance(start, dt.datetime):
        return When(text=_all_day_text(start, end, language), original=None, start=start)
    assert end is None or isinstance(end, dt.datetime)
    if start.tzinfo is None:
        body = _span_text(start, end, language)
        floating = translate("date.zone.floating", language)
        text = translate("date.format.with_zone", language, when=body, zone=floating)
        return When(text=text, original=None, start=start)
    own_label = zone_label(start, event)
    target = zoneinfo.ZoneInfo(zone) if zone else None
    shown_start = start.astimezone(target) if target else start
    shown_end = end.astimezone(target) if (target and end is not None) else end
    if shown_end is not None and shown_end.tzinfo is None:
        shown_end = None  # a floating DTEND with a zoned DTSTART cannot be placed
    shown_label = zone_label(shown_start, None if target else event)
    text = translate(
        "date.format.with_zone",
        language,
        when=_span_text(shown_start, shown_end, language),
        zone=shown_label,
    )
    original = None
    # A time the sender wrote in UTC has no zone of a person behind it: not worth repeating.
    if target is not None and own_label != shown_label and start.tzinfo is not dt.UTC:
        original = translate(
            "date.format.with_zone",
            language,
            when=_span_text(start, end if isinstance(end, dt.datetime) else None, language),
            zone=own_label,
        )
    return When(text=text, original=original, start=shown_start)


def _span_text(start: dt.datetime, end: dt.datetime | None, language: str) -> str:
    day = date_text(start.date(), language)
    if end is None or end == start:
        return translate("date.format.instant", language, date=day, time=time_text(start, language))
    if end.date() == start.date():
        return translate(
            "date.format.same_day",
            language,
            date=day,
            start=time_text(start, language),
            end=time_text(end, language),
        )
    return translate(
        "date.format.span",
        language,
        start_date=day,
        start=time_text(start, language),
        end_date=date_text(end.date(), language),
        end=time_text(end, language),
    )


def _all_day_text(start: dt.date, end: dt.date | dt.datetime | None, language: str) -> str:
    last = start
    if isinstance(end, dt.date) and not isinstance(end, dt.datetime):
        last = max(start, end - dt.timedelta(days=1))  # DTEND is exclusive
    if last == start:
        return translate("date.format.all_day", language, date=date_text(start, language))
    return translate(
        "date.format.all_day_span",
        language,
        start=date_text(start, language),
        end=date_text(last, language),
    )
