"""Recurrence rules in words, in every supported language (RFC 5545 section 3.3.10).

The common rules read naturally: DAILY, WEEKLY, MONTHLY and YEARLY with INTERVAL, BYDAY
(plain or with an ordinal), BYMONTHDAY, BYMONTH, a single BYSETPOS, COUNT and UNTIL ("every
2 weeks on Tuesday and Thursday, until 30 June 2026"). Any other rule still gets a faithful
wording: its frequency and interval in words, followed by the rule itself, so nothing is
left out or guessed. EXDATE and RDATE are listed ("except ...", "also ...").
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence

from calendars.ical import Event, RecurrenceRule
from calendars.translations import register_keys, translate

from .dates import WEEKDAY_CODES, day_month_text

_FREQUENCIES = {
    "SECONDLY": "secondly",
    "MINUTELY": "minutely",
    "HOURLY": "hourly",
    "DAILY": "daily",
    "WEEKLY": "weekly",
    "MONTHLY": "monthly",
    "YEARLY": "yearly",
}
_NTH = ("1", "2", "3", "4", "5", "-1", "-2", "-3")
_WEEKDAYS_MON_FRI = ("MO", "TU", "WE", "TH", "FR")
_LISTED = 5  # dates listed before "and N more"

register_keys(
    [f"recurrence.{name}.{n}" for name in _FREQUENCIES.values() for n in ("1", "n")]
    + [f"recurrence.weekday_every.{code}" for code in WEEKDAY_CODES]
    + [f"recurrence.nth.{n}" for n in _NTH]
    + [f"recurrence.month_day.{n}" for n in range(1, 32)]
    + [f"recurrence.of_month.{n}" for n in range(1, 13)]
    + [
        "recurrence.and",
        "recurrence.list_sep",
        "recurrence.every_days",
        "recurrence.every_weekday",
        "recurrence.on_days",
        "recurrence.on_month_days",
        "recurrence.on_last_day",
        "recurrence.on_nth_weekday",
        "recurrence.on_date",
        "recurrence.on_nth_weekday_of",
        "recurrence.in_months",
        "recurrence.custom",
        "recurrence.until",
        "recurrence.count.1",
        "recurrence.count.n",
        "recurrence.except",
        "recurrence.also",
        "recurrence.more",
        "recurrence.in_zone",
    ]
)


class _Custom(Exception):
    """The rule has parts this module does not put in words; use the generic wording."""


def recurrence_text(event: Event, *, zone: str | None, language: str) -> str | None:
    """The event's repetition in words, or None when it does not repeat."""
    parts: list[str] = []
    if event.rrule is not None:
        parts.append(rule_text(event.rrule, start=event.start, zone=zone, language=language))
    if event.rdates:
        parts.append(
            translate("recurrence.also", language, dates=_dates(event.rdates, zone, language))
        )
    if not parts:
        return None
    if event.exdates:
        parts.append(
            translate("recurrence.except", language, dates=_dates(event.exdates, zone, language))
        )
    return "; ".join(parts)


def rule_text(
    rule: RecurrenceRule,
    *,
    start: dt.date | dt.datetime | None,
    zone: str | None,
    language: str,
) -> str:
    """One RRULE in words, with its COUNT or UNTIL."""
    frequency = _FREQUENCIES.get(rule.freq)
    if frequency is None:
        return rule.text
    every = translate(
        f"recurrence.{frequency}.{'1' if rule.interval == 1 else 'n'}", language, n=rule.interval
    )
    shift = _day_shift(start, zone)
    try:
        text = _pattern(rule, frequency, every, start, language, shift)
    except _Custom:
        text = translate("recurrence.custom", language, every=every, rule=rule.text)
    if rule.until is not None:
        return translate(
            "recurrence.until", language, rule=text, date=_until_text(rule.until, zone, language)
        )
    if rule.count is not None:
        key = "recurrence.count.1" if rule.count == 1 else "recurrence.count.n"
        return translate(key, language, rule=text, count=rule.count)
    return text


def _day_shift(start: dt.date | dt.datetime | None, zone: str | None) -> int:
    """Days between the start's date in the event's zone and in the reader's (-1, 0 or 1).

    A rule's days are days of the event's zone (RFC 5545 section 3.3.10): a meeting on
    Tuesdays at 23:00 in Paris is on Wednesdays in Tokyo.
    """
    if not isinstance(start, dt.datetime) or start.tzinfo is None or not zone:
        return 0
    return (start.astimezone(zoneinfo.ZoneInfo(zone)).date() - start.date()).days


def _pattern(
    rule: RecurrenceRule,
    frequency: str,
    every: str,
    start: dt.date | dt.datetime | None,
    language: str,
    shift: int = 0,
) -> str:
    if rule.other:
        raise _Custom
    plain_days = [_shifted(d, shift) for d in rule.by_day if d in _WEEKDAY_INDEX]
    ordinal_days = [d for d in rule.by_day if d not in _WEEKDAY_INDEX]
    if shift and (ordinal_days or rule.by_month_day or frequency in ("monthly", "yearly")):
        # Month days and "the last Friday" do not shift simply: name the event's zone.
        text = _pattern(rule, frequency, every, start, language)
        zone = (
            start.tzinfo.key
            if isinstance(start, dt.datetime) and isinstance(start.tzinfo, zoneinfo.ZoneInfo)
            else "UTC"
        )
        return translate("recurrence.in_zone", language, rule=text, zone=zone)
    if frequency in ("secondly", "minutely", "hourly"):
        if rule.by_day or rule.by_month_day or rule.by_month or rule.by_set_pos:
            raise _Custom
        return every
    if frequency == "daily":
        if rule.by_month_day or rule.by_set_pos or ordinal_days:
            raise _Custom
        if rule.by_month:
            if plain_days:
                raise _Custom
            return translate(
                "recurrence.in_months",
                language,
                every=every,
                months=_months(rule.by_month, language),
            )
        if plain_days:
            if rule.interval != 1:
                raise _Custom
            return _every_days(plain_days, language)
        return every
    if frequency == "weekly":
        if rule.by_month_day or rule.by_month or rule.by_set_pos or ordinal_days:
            raise _Custom
        days = plain_days or ([_shifted(_start_weekday(start), shift)] if start is not None else [])
        if not days:
            return every
        if rule.interval == 1:
            return _every_days(days, language)
        names = _join([_weekday(d, language) for d in _week_order(days)], language)
        return translate("recurrence.on_days", language, every=every, days=names)
    if frequency == "monthly":
        if rule.by_month:
            raise _Custom
        if rule.by_month_day:
            if rule.by_day or rule.by_set_pos:
                raise _Custom
            return _month_days(rule.by_month_day, every, language)
        if rule.by_day:
            nth, weekday = _single_nth_weekday(rule, plain_days, ordinal_days)
            return translate(
                "recurrence.on_nth_weekday",
                language,
                every=every,
                nth=translate(f"recurrence.nth.{nth}", language),
                weekday=_weekday(weekday, language),
            )
        if rule.by_set_pos or start is None:
            raise _Custom
        return _month_days((start.day,), every, language)
    # yearly
    if rule.by_set_pos and not rule.by_day:
        raise _Custom
    if len(rule.by_month) > 1 or len(rule.by_month_day) > 1:
        raise _Custom
    month = rule.by_month[0] if rule.by_month else (start.month if start is not None else None)
    if rule.by_day:
        if not rule.by_month or rule.by_month_day:
            raise _Custom
        nth, weekday = _single_nth_weekday(rule, plain_days, ordinal_days)
        return translate(
            "recurrence.on_nth_weekday_of",
            language,
            every=every,
            nth=translate(f"recurrence.nth.{nth}", language),
            weekday=_weekday(weekday, language),
            of_month=translate(f"recurrence.of_month.{rule.by_month[0]}", language),
        )
    day = rule.by_month_day[0] if rule.by_month_day else (start.day if start is not None else None)
    if month is None or day is None or day < 1:
        raise _Custom
    try:
        anniversary = dt.date(2000, month, day)  # a leap year, so 29 February reads
    except ValueError:
        raise _Custom from None
    return translate(
        "recurrence.on_date", language, every=every, date=day_month_text(anniversary, language)
    )


_WEEKDAY_INDEX = {code.upper(): index for index, code in enumerate(WEEKDAY_CODES)}


def _weekday(code: str, language: str) -> str:
    return translate(f"date.weekday.{code.lower()}", language)


def _week_order(days: Sequence[str]) -> list[str]:
    return sorted(dict.fromkeys(days), key=lambda d: _WEEKDAY_INDEX[d])


def _every_days(days: Sequence[str], language: str) -> str:
    ordered = _week_order(days)
    if tuple(ordered) == _WEEKDAYS_MON_FRI:
        return translate("recurrence.every_weekday", language)
    names = [translate(f"recurrence.weekday_every.{d.lower()}", language) for d in ordered]
    return translate("recurrence.every_days", language, days=_join(names, language))


def _single_nth_weekday(
    rule: RecurrenceRule, plain_days: list[str], ordinal_days: list[str]
) -> tuple[str, str]:
    """``("2", "TU")`` for BYDAY=2TU, or BYDAY=TU;BYSETPOS=2."""
    if len(rule.by_day) != 1:
        raise _Custom
    if ordinal_days:
        if rule.by_set_pos:
            raise _Custom
        item = ordinal_days[0]
        nth, weekday = item[:-2].lstrip("+"), item[-2:]
    else:
        if len(rule.by_set_pos) != 1:
            raise _Custom
        nth, weekday = str(rule.by_set_pos[0]), plain_days[0]
    if nth not in _NTH or weekday not in _WEEKDAY_INDEX:
        raise _Custom
    return nth, weekday


def _month_days(days: Sequence[int], every: str, language: str) -> str:
    if tuple(days) == (-1,):
        return translate("recurrence.on_last_day", language, every=every)
    if any(not 1 <= d <= 31 for d in days):
        raise _Custom
    names = [translate(f"recurrence.month_day.{d}", language) for d in sorted(set(days))]
    return translate("recurrence.on_month_days", language, every=every, days=_join(names, language))


def _months(months: Sequence[int], language: str) -> str:
    if any(not 1 <= m <= 12 for m in months):
        raise _Custom
    return _join([translate(f"date.month.{m}", language) for m in sorted(set(months))], language)


def _shifted(code: str, shift: int) -> str:
    return WEEKDAY_CODES[(_WEEKDAY_INDEX[code] + shift) % 7].upper()


def _start_weekday(start: dt.date | dt.datetime) -> str:
    return WEEKDAY_CODES[start.weekday()].upper()


def _join(items: Sequence[str], language: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    head = translate("recurrence.list_sep", language).join(items[:-1])
    return translate("recurrence.and", language, a=head, b=items[-1])


def _until_text(until: dt.date | dt.datetime, zone: str | None, language: str) -> str:
    if isinstance(until, dt.datetime):
        if until.tzinfo is not None and zone:
            until = until.astimezone(zoneinfo.ZoneInfo(zone))
        until = until.date()
    return day_month_text(until, language, year=True)


def _dates(values: Sequence[dt.date | dt.datetime], zone: str | None, language: str) -> str:
    days = []
    for value in values:
        if isinstance(value, dt.datetime):
            if value.tzinfo is not None and zone:
                value = value.astimezone(zoneinfo.ZoneInfo(zone))
            value = value.date()
        days.append(value)
    unique = sorted(dict.fromkeys(days))
    names = [day_month_text(day, language, year=True) for day in unique[:_LISTED]]
    if len(unique) > _LISTED:
        return translate(
            "recurrence.more",
            language,
            list=translate("recurrence.list_sep", language).join(names),
            count=len(unique) - _LISTED,
        )
    return _join(names, language)
