"""When a series ends: the end of an event's last occurrence (for the RSVP links' expiry)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from calendars.ical import Event, ICalendarError
from calendars.ical.rules import MAX_OCCURRENCES, bounded, render_work, rule_build

# A COUNT larger than this is treated like an endless series.
MAX_EXPANDED = MAX_OCCURRENCES


def last_end(events: Iterable[Event]) -> dt.datetime | None:
    """The end of the last occurrence among ``events`` as an aware datetime (UTC).

    None means "no end": an RRULE without COUNT or UNTIL, or a COUNT too large or too costly
    to expand (the walk is bounded in work, not only in results: rules.py).
    Floating and all-day values are read as UTC, erring by at most a day, which the grace
    period covers.
    """
    ends: list[dt.datetime] = []
    for event in events:
        if event.start is None:
            continue
        duration = _duration(event)
        ends.append(_aware(event.end if event.end is not None else event.start))
        for extra in event.rdates:
            ends.append(_aware(extra) + duration)
        rule = event.rrule
        if rule is None:
            continue
        if rule.until is not None:
            ends.append(_aware(rule.until) + duration)
        elif rule.count is not None and rule.count <= MAX_EXPANDED:
            last = _last_by_count(event)
            if last is None:
                return None
            ends.append(last + duration)
        else:
            return None
    return max(ends).astimezone(dt.UTC) if ends else None


def _duration(event: Event) -> dt.timedelta:
    start, end = event.start, event.end
    if start is None or end is None:
        return dt.timedelta(0)
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
        if (start.tzinfo is None) != (end.tzinfo is None):
            return dt.timedelta(0)
        return end - start
    if not isinstance(start, dt.datetime) and not isinstance(end, dt.datetime):
        return end - start
    return dt.timedelta(0)


def _aware(value: dt.date | dt.datetime) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time.min)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _last_by_count(event: Event) -> dt.datetime | None:
    assert event.rrule is not None and event.start is not None
    start = event.start
    naive = (
        start.replace(tzinfo=None)
        if isinstance(start, dt.datetime)
        else dt.datetime.combine(start, dt.time.min)
    )
    try:
        rule = rule_build(event.rrule.text, dtstart=naive, work=render_work())
        occurrences = list(bounded(rule, limit=MAX_EXPANDED))
    except (ICalendarError, ValueError, TypeError, OverflowError):
        return None
    if not occurrences:
        return _aware(start)
    last = occurrences[-1]
    if isinstance(start, dt.datetime) and start.tzinfo is not None:
        return last.replace(tzinfo=start.tzinfo)
    return last.replace(tzinfo=dt.UTC)
