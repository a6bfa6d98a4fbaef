"""Recurrence rules evaluated under a budget of work (RFC 5545 section 3.3.10).

``dateutil`` walks a rule period by period from its start and only checks its limits (COUNT,
UNTIL) when a period yields an occurrence. A rule whose periods never yield
(``FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30``) therefore walks to the year 9999 before it gives
up, whatever COUNT or UNTIL say, and a zero INTERVAL never moves at all. Bounding the number
of results, as a caller can, does not bound that work.

:func:`rule_build` reads a rule with dateutil's own parser and returns it as a
:class:`GuardedRule`: the same dateutil rule, which counts its steps in a :class:`Work`
budget and stops with :class:`RecurrenceTooExpensive` when the budget is spent. A step is a
new month or year of dateutil's walk (its ``_iterinfo.rebuild``, which reads the rule's
``_byeaster`` on every call) and, for hourly, minutely and secondly rules, every period
(their time sets read ``_tzinfo``): so a budget of N steps bounds the walk to about N months
and N sub-daily periods, whatever the rule.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dateutil.rrule import rrule, rruleset, rrulestr

from calendars.ical.types import BudgetExceeded, ICalendarError, RecurrenceRule

# --- Reading an RRULE ---------------------------------------------------------------------


def rrule_read(component: Any) -> RecurrenceRule | None:
    """The VEVENT's first RRULE as a :class:`RecurrenceRule`, or None."""
    value = component.get("RRULE")
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None:
        return None
    return recurrence_rule_from_parts(value, text=value.to_ical().decode())


def recurrence_rule_from_parts(parts: Mapping[str, Any], *, text: str) -> RecurrenceRule:
    """Structure an RRULE mapping (as icalendar reads it) into a :class:`RecurrenceRule`."""
    known = {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "BYMONTHDAY", "BYMONTH"}
    known |= {"BYSETPOS", "WKST"}

    def values(name: str) -> list[Any]:
        found = parts.get(name)
        if found is None:
            return []
        return list(found) if isinstance(found, list | tuple) else [found]

    def integers(name: str) -> tuple[int, ...]:
        return tuple(int(v) for v in values(name))

    freq = str((values("FREQ") or [""])[0]).upper()
    interval = int((values("INTERVAL") or [1])[0]) or 1
    count_values = values("COUNT")
    until_values = values("UNTIL")
    other = tuple(
        (str(name).upper(), ",".join(str(v) for v in values(str(name))))
        for name in parts
        if str(name).upper() not in known
    )
    return RecurrenceRule(
        freq=freq,
        interval=interval,
        count=int(count_values[0]) if count_values else None,
        until=until_values[0] if until_values else None,
        by_day=tuple(str(v).upper() for v in values("BYDAY")),
        by_month_day=integers("BYMONTHDAY"),
        by_month=integers("BYMONTH"),
        by_set_pos=integers("BYSETPOS"),
        week_start=str(values("WKST")[0]).upper() if values("WKST") else None,
        other=other,
        text=text,
    )


# --- Evaluating under a budget --------------------------------------------------------------


class RecurrenceTooExpensive(BudgetExceeded):
    """Evaluating a recurrence rule would take more work than its budget allows."""

    def __init__(self, message: str) -> None:
        super().__init__(message, limit="recurrence work")


@dataclass
class Work:
    """A budget of steps (and, as a backstop, of wall-clock seconds) for one evaluation."""

    max_steps: int
    seconds: float | None = None
    steps: int = 0
    _deadline: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.seconds is not None:
            self._deadline = time.monotonic() + self.seconds

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.max_steps:
            raise RecurrenceTooExpensive(
                f"the recurrence rule needs more than {self.max_steps} steps to evaluate"
            )
        if (
            self._deadline is not None
            and self.steps % 16 == 0
            and time.monotonic() > self._deadline
        ):
            raise RecurrenceTooExpensive(
                f"the recurrence rule takes more than {self.seconds:g} s to evaluate"
            )


class GuardedRule(rrule):
    """A dateutil ``rrule`` that spends one step of its :class:`Work` per month or year it
    walks and per sub-daily period (see the module docstring)."""

    def __init__(self, *, work: Work, **kwargs: Any) -> None:
        self.__dict__["_work"] = work
        super().__init__(**kwargs)

    @property  # type: ignore[override]
    def _byeaster(self) -> Any:
        self.__dict__["_work"].step()
        return self.__dict__["_guarded_byeaster"]

    @_byeaster.setter
    def _byeaster(self, value: Any) -> None:
        self.__dict__["_guarded_byeaster"] = value

    @property  # type: ignore[override]
    def _tzinfo(self) -> Any:
        self.__dict__["_work"].step()
        return self.__dict__["_guarded_tzinfo"]

    @_tzinfo.setter
    def _tzinfo(self, value: Any) -> None:
        self.__dict__["_guarded_tzinfo"] = value


def rule_build(text: str, *, dtstart: dt.datetime, work: Work, ignoretz: bool = False) -> rrule:
    """The RRULE ``text`` from ``dtstart``, read by ``dateutil.rrule.rrulestr`` and guarded.

    Raises :class:`ICalendarError` when dateutil cannot read the rule or its INTERVAL is not a
    positive number (a zero INTERVAL never advances).
    """
    try:
        base = rrulestr(text, dtstart=dtstart, ignoretz=ignoretz, cache=False)
    except (ValueError, TypeError, OverflowError, KeyError, IndexError) as exc:
        raise ICalendarError(f"the recurrence rule {text[:80]!r} cannot be read") from exc
    if not isinstance(base, rrule):
        raise ICalendarError(f"the recurrence rule {text[:80]!r} cannot be read")
    if base._interval < 1:
        raise ICalendarError(f"the recurrence rule {text[:80]!r} has an INTERVAL below 1")
    # Exactly what rrule.replace() passes on, into the guarded class.
    kwargs: dict[str, Any] = {
        "freq": base._freq,
        "dtstart": base._dtstart,
        "interval": base._interval,
        "wkst": base._wkst,
        "count": base._count,
        "until": base._until,
        "cache": False,
    }
    kwargs.update(base._original_rule)
    try:
        return GuardedRule(work=work, **kwargs)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ICalendarError(f"the recurrence rule {text[:80]!r} cannot be read") from exc


def bounded(occurrences: Iterable[dt.datetime], *, limit: int) -> Iterator[dt.datetime]:
    """The first ``limit`` occurrences, then :class:`RecurrenceTooExpensive` if more follow."""
    for count, occurrence in enumerate(occurrences, start=1):
        if count > limit:
            raise RecurrenceTooExpensive(f"the recurrence has more than {limit} occurrences")
        yield occurrence


# --- Occurrences of an event, bounded (rendering, RSVP) -------------------------------------

# What rendering and the RSVP page may spend on one event's recurrence: steps of dateutil's
# walk, occurrences looked at, and a wall-clock backstop.
RENDER_STEPS = 2000
MAX_OCCURRENCES = 5000
RENDER_SECONDS = 0.5


def render_work() -> Work:
    """A fresh budget for evaluating one event's recurrence while rendering or answering."""
    return Work(max_steps=RENDER_STEPS, seconds=RENDER_SECONDS)


def recurrence_set(
    *,
    rule: str | None,
    start: dt.datetime,
    rdates: Iterable[dt.datetime] = (),
    exdates: Iterable[dt.datetime] = (),
    work: Work,
    ignoretz: bool = False,
) -> rruleset:
    """The recurrence set (RFC 5545 section 3.8.5) of RRULE ``rule`` from ``start`` with
    RDATE and EXDATE, its rule guarded by ``work``. Raises :class:`ICalendarError`."""
    rules = rruleset()
    if rule is not None:
        rules.rrule(rule_build(rule, dtstart=start, work=work, ignoretz=ignoretz))
    for extra in rdates:
        rules.rdate(extra)
    for removed in exdates:
        rules.exdate(removed)
    return rules


def first_at_or_after(
    occurrences: Iterable[dt.datetime], moment: dt.datetime, *, limit: int = MAX_OCCURRENCES
) -> dt.datetime | None:
    """The first occurrence at or after ``moment`` (None when the set ends before it),
    looking at no more than ``limit`` occurrences (:class:`RecurrenceTooExpensive`)."""
    for occurrence in bounded(occurrences, limit=limit):
        if occurrence >= moment:
            return occurrence
    return None
