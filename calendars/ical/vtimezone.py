"""A sender's own VTIMEZONE (RFC 5545 section 3.6.5) as a bounded table of transitions.

A VTIMEZONE describes its offsets by observances (STANDARD, DAYLIGHT), each with an onset
(DTSTART), the offsets before and after it (TZOFFSETFROM, TZOFFSETTO) and the rule or list of
dates that repeat the onset (RRULE, RDATE). Read naively, every ``utcoffset()`` walks those
rules from their start, which Outlook writes as 1601, and a sender can make that walk as
long as they like (``FREQ=SECONDLY``). So :func:`table_zone_build` reads the observances once,
refuses rules no real zone has (more often than daily, a zero INTERVAL) and computes the
transitions of the years the message needs (:class:`Years`; at most :data:`TABLE_FIRST_YEAR`
to :data:`TABLE_LAST_YEAR`, the calendar years events may use) under a budget of work and
of transitions. The result, :class:`TableZone`, is a ``tzinfo`` that answers each lookup with
one binary search (PEP 495 ``fold`` included), like ``zoneinfo``; before the table it keeps
the offset in force when the table starts, after it the last one.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from calendars.ical.budgets import LIMITS, YEAR_MAX, YEAR_MIN
from calendars.ical.rules import RecurrenceTooExpensive, Work, rule_build
from calendars.ical.types import BudgetExceeded, ICalendarError

TABLE_FIRST_YEAR = YEAR_MIN - 2
TABLE_LAST_YEAR = YEAR_MAX + 2
# Real zones change their offset at most twice a year; the budget leaves room for more.
MAX_TRANSITIONS = 2000
MAX_STEPS = 2000  # of dateutil's walk (months or years, see rules.py), for all rules of a zone
MAX_OFFSET = dt.timedelta(hours=18)
_SUB_DAILY = frozenset({"SECONDLY", "MINUTELY", "HOURLY"})


@dataclass(frozen=True)
class Years:
    """The years a table covers (inclusive), within TABLE_FIRST_YEAR..TABLE_LAST_YEAR."""

    first: int = TABLE_FIRST_YEAR
    last: int = TABLE_LAST_YEAR

    def __post_init__(self) -> None:
        object.__setattr__(self, "first", min(max(self.first, TABLE_FIRST_YEAR), TABLE_LAST_YEAR))
        object.__setattr__(self, "last", min(max(self.last, self.first), TABLE_LAST_YEAR))

    @property
    def start(self) -> dt.datetime:
        return dt.datetime(self.first, 1, 1)

    @property
    def end(self) -> dt.datetime:
        return dt.datetime(self.last, 12, 31, 23, 59, 59)


@dataclass(frozen=True)
class ZoneRule:
    """One RRULE of an observance: its text, frequency and interval, and whether it counts."""

    text: str
    freq: str
    interval: int
    counted: bool


@dataclass(frozen=True)
class Observance:
    """One STANDARD or DAYLIGHT part. ``start`` and ``rdates`` are local wall times in the
    offset before the onset (``offset_from``), as RFC 5545 writes them."""

    dst: bool
    offset_from: dt.timedelta
    offset_to: dt.timedelta
    name: str
    start: dt.datetime
    rules: tuple[ZoneRule, ...]
    rdates: tuple[dt.datetime, ...]


@dataclass(frozen=True)
class _State:
    offset: dt.timedelta
    dst: dt.timedelta
    name: str


class TableZone(dt.tzinfo):
    """A ``tzinfo`` answering from a precomputed, sorted list of transitions."""

    def __init__(self, tzid: str, initial: _State, transitions: list[tuple[dt.datetime, _State]]):
        self.tzid = tzid
        self._utc = [at for at, _ in transitions]
        self._states = [initial] + [state for _, state in transitions]
        # Wall-clock times of each transition for fold 0 and fold 1 (as zoneinfo does): the
        # later of the two offsets around it for fold 0, the earlier for fold 1.
        self._wall: tuple[list[dt.datetime], list[dt.datetime]] = ([], [])
        for index, at in enumerate(self._utc):
            before, after = self._states[index].offset, self._states[index + 1].offset
            self._wall[0].append(at + max(before, after))
            self._wall[1].append(at + min(before, after))

    def __repr__(self) -> str:
        return f"TableZone({self.tzid!r}, {len(self._utc)} transitions)"

    def _state(self, moment: dt.datetime | None) -> _State:
        if moment is None:
            return self._states[0]
        wall = moment.replace(tzinfo=None)
        index = bisect.bisect_right(self._wall[1 if moment.fold else 0], wall)
        return self._states[index]

    def utcoffset(self, moment: dt.datetime | None) -> dt.timedelta:
        return self._state(moment).offset

    def dst(self, moment: dt.datetime | None) -> dt.timedelta:
        return self._state(moment).dst

    def tzname(self, moment: dt.datetime | None) -> str:
        return self._state(moment).name

    def fromutc(self, moment: dt.datetime) -> dt.datetime:
        if moment.tzinfo is not self:
            raise ValueError("fromutc: dt.tzinfo is not self")
        utc = moment.replace(tzinfo=None)
        index = bisect.bisect_right(self._utc, utc)
        offset = self._states[index].offset
        fold = 0
        if index > 0:
            shift = self._states[index - 1].offset - offset
            if shift > dt.timedelta(0) and utc - self._utc[index - 1] < shift:
                fold = 1  # the repeated hour after clocks go back
        return (utc + offset).replace(tzinfo=self, fold=fold)


def observances_read(component: Any) -> tuple[Observance, ...]:
    """The STANDARD and DAYLIGHT parts of a VTIMEZONE component, checked.

    Raises :class:`BudgetExceeded` for too many parts or a rule more frequent than daily or
    with an INTERVAL below 1, and :class:`ICalendarError` for a part without its onset or
    offsets (the zone is then unusable).
    """
    parts = [p for p in component.subcomponents if p.name in ("STANDARD", "DAYLIGHT")]
    if len(parts) > LIMITS.max_zone_rules:
        raise BudgetExceeded(
            f"a VTIMEZONE has {len(parts)} STANDARD/DAYLIGHT parts; at most "
            f"{LIMITS.max_zone_rules} are read",
            limit="time-zone rules",
        )
    if not parts:
        raise ICalendarError("a VTIMEZONE has no STANDARD or DAYLIGHT part")
    return tuple(_observance(part) for part in parts)


def _naive(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time.min)
    raise ICalendarError("a VTIMEZONE onset is not a date-time")


def _offset(part: Any, name: str) -> dt.timedelta:
    value = getattr(part.get(name), "td", None)
    if not isinstance(value, dt.timedelta):
        raise ICalendarError(f"a VTIMEZONE part has no {name}")
    if abs(value) > MAX_OFFSET:
        raise BudgetExceeded(
            f"a VTIMEZONE offset of {value} is beyond the {MAX_OFFSET} any place uses",
            limit="time-zone offset",
        )
    # icalendar and datetime work in whole minutes (RFC 5545 allows seconds).
    return dt.timedelta(minutes=round(value.total_seconds() / 60))


def _observance(part: Any) -> Observance:
    start = _naive(getattr(part.get("DTSTART"), "dt", None))
    rules = []
    values = part.get("RRULE")
    for rule in values if isinstance(values, list) else ([values] if values is not None else []):
        rules.append(_zone_rule(rule))
    rdates: list[dt.datetime] = []
    values = part.get("RDATE")
    for entry in values if isinstance(values, list) else ([values] if values is not None else []):
        for item in getattr(entry, "dts", []):
            value = item.dt[0] if isinstance(item.dt, tuple) else item.dt
            rdates.append(_naive(value))
    name = " ".join(str(part.get("TZNAME", "")).split())[:40]
    offset_to = _offset(part, "TZOFFSETTO")
    return Observance(
        dst=part.name == "DAYLIGHT",
        offset_from=_offset(part, "TZOFFSETFROM"),
        offset_to=offset_to,
        name=name or _offset_name(offset_to),
        start=start,
        rules=tuple(rules),
        rdates=tuple(rdates),
    )


def _zone_rule(rule: Any) -> ZoneRule:
    if not hasattr(rule, "get") or not hasattr(rule, "to_ical"):
        raise ICalendarError("a VTIMEZONE rule cannot be read")
    freq = str((rule.get("FREQ") or [""])[0]).upper()
    if freq in _SUB_DAILY:
        raise BudgetExceeded(
            f"a VTIMEZONE rule repeats {freq.lower()}; time-zone rules repeat daily at most",
            limit="time-zone rule frequency",
        )
    try:
        interval = int((rule.get("INTERVAL") or [1])[0])
    except (TypeError, ValueError) as exc:
        raise ICalendarError("a VTIMEZONE rule has an unreadable INTERVAL") from exc
    if interval < 1:
        raise BudgetExceeded(
            "a VTIMEZONE rule has an INTERVAL below 1", limit="time-zone rule frequency"
        )
    text = rule.to_ical().decode("utf-8", "replace")
    return ZoneRule(text=text, freq=freq, interval=interval, counted=bool(rule.get("COUNT")))


def _offset_name(offset: dt.timedelta) -> str:
    sign = "-" if offset < dt.timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def _shifted_start(start: dt.datetime, rule: ZoneRule, years: Years) -> dt.datetime:
    """The rule's start moved forward by whole periods to just before the table, so that the
    walk starts near the table instead of in 1601. Rules with COUNT keep their start (the
    count is from there); so does a start that cannot move (29 February to a common year)."""
    target = years.first - 2
    if start.year >= target or rule.counted:
        return start
    try:
        if rule.freq == "YEARLY":
            shift = (target - start.year) // rule.interval * rule.interval
            return start.replace(year=start.year + shift)
        if rule.freq == "MONTHLY":
            months = (target - start.year) * 12 // rule.interval * rule.interval
            index = start.month - 1 + months
            return start.replace(year=start.year + index // 12, month=index % 12 + 1)
        if rule.freq in ("WEEKLY", "DAILY"):
            step = dt.timedelta(days=rule.interval * (7 if rule.freq == "WEEKLY" else 1))
            return start + (dt.datetime(target, 1, 1) - start) // step * step
    except (ValueError, OverflowError):
        pass
    return start


def _onsets(observance: Observance, work: Work, years: Years) -> Iterator[dt.datetime]:
    """Every onset of one observance up to the end of the table (local wall times), plus the
    last one before the table, so that the offset in force when the table starts is known."""
    yield observance.start
    yield from observance.rdates
    aware_from = dt.timezone(observance.offset_from)
    for rule in observance.rules:
        begin = _shifted_start(observance.start, rule, years)
        try:
            occurrences = rule_build(rule.text, dtstart=begin.replace(tzinfo=aware_from), work=work)
            for occurrence in occurrences:
                wall = occurrence.replace(tzinfo=None)
                if wall > years.end:
                    break
                yield wall
        except RecurrenceTooExpensive as exc:
            raise BudgetExceeded(
                "the event's time-zone rules are too expensive to compute", limit="time-zone rules"
            ) from exc
        except (ValueError, TypeError, OverflowError) as exc:
            raise ICalendarError("a VTIMEZONE rule cannot be evaluated") from exc


def table_zone_build(
    tzid: str,
    observances: Iterable[Observance],
    *,
    work: Work | None = None,
    years: Years | None = None,
) -> TableZone:
    """The :class:`TableZone` of ``observances``; raises :class:`BudgetExceeded` when they
    take more work than ``work`` (default :data:`MAX_STEPS`) or change more often than
    :data:`MAX_TRANSITIONS` allows."""
    observances = tuple(observances)
    work = work if work is not None else Work(max_steps=MAX_STEPS)
    years = years or Years()
    before: tuple[dt.datetime, _State] | None = None
    transitions: dict[dt.datetime, _State] = {}
    for observance in observances:
        state = _State(
            offset=observance.offset_to,
            dst=_dst_delta(observance, observances),
            name=observance.name,
        )
        for wall in _onsets(observance, work, years):
            try:
                at = wall - observance.offset_from  # RFC 5545: onsets are in the old offset
            except OverflowError:
                continue
            if at < years.start:
                if before is None or at > before[0]:
                    before = (at, state)
                continue
            if at > years.end:
                continue
            transitions[at] = state
            if len(transitions) > MAX_TRANSITIONS:
                raise BudgetExceeded(
                    "a time zone of the event changes its offset more than "
                    f"{MAX_TRANSITIONS} times between {years.first} and {years.last}",
                    limit="time-zone rules",
                )
    ordered = sorted(transitions.items())
    if before is not None:
        initial = before[1]
    else:
        # Before the first onset, the first observance's TZOFFSETFROM is in force.
        first = min(observances, key=lambda o: o.start)
        initial = _State(offset=first.offset_from, dst=dt.timedelta(0), name=first.name)
    return TableZone(tzid, initial, ordered)


def _dst_delta(observance: Observance, observances: tuple[Observance, ...]) -> dt.timedelta:
    """For DAYLIGHT, how far it is ahead of standard time (for ``tzinfo.dst``)."""
    if not observance.dst:
        return dt.timedelta(0)
    standard = [o.offset_to for o in observances if not o.dst]
    if not standard:
        return observance.offset_to - observance.offset_from
    return observance.offset_to - min(standard, key=lambda s: abs(observance.offset_to - s))
