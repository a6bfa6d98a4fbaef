"""Time zones of iCalendar data (RFC 5545 sections 3.2.19 and 3.6.5).

A ``TZID`` parameter is resolved in this order: an IANA name; a Windows zone name (Outlook,
Exchange) mapped to IANA through the CLDR table that ``icalendar`` ships; the IANA suffix of a
"globally unique" TZID (``/mozilla.org/.../Europe/Berlin``); the calendar's own ``VTIMEZONE``
definition; else the time is floating (shown as written). Floating times and dates take the
calendar's ``X-WR-TIMEZONE`` when it names a known zone.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import threading
import zoneinfo
from collections.abc import Callable, Iterable
from typing import Any

import icalendar
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from calendars.ical.budgets import event_dates
from calendars.ical.rules import Work
from calendars.ical.types import LIBRARY_ERRORS, UTC, BudgetExceeded
from calendars.ical.vtimezone import Years, observances_read, table_zone_build

# A message may define and use this many zones of its own, built with this much work in all
# (see vtimezone.py: a step is a month or year of a rule's walk).
MAX_CUSTOM_ZONES = 20
MAX_ZONE_STEPS_PER_MESSAGE = 6000


class ZoneContext:
    """Resolves TZIDs against the IANA database and this calendar's own VTIMEZONEs."""

    def __init__(self, calendar: Any, text: str) -> None:
        self.vtimezones: dict[str, Any] = {}
        for component in calendar.walk("VTIMEZONE"):
            tzid = str(component.get("TZID", ""))
            self.vtimezones.setdefault(tzid, component)
        self.text = text
        wr = str(calendar.get("X-WR-TIMEZONE", "")).strip()
        self.x_wr_zone: zoneinfo.ZoneInfo | None = iana_zone(wr) if wr else None
        self._custom: dict[str, dt.tzinfo | None] = {}
        self._work = Work(max_steps=MAX_ZONE_STEPS_PER_MESSAGE)
        self.years = years_needed(calendar)

    def zone_for(self, tzid: str) -> dt.tzinfo | None:
        """The tzinfo for a TZID, or None when nothing identifies it (the time is floating).

        Raises :class:`BudgetExceeded` when the calendar's own definition of the zone asks
        for more than Convoke computes (vtimezone.py), or the message uses too many of them.
        """
        if not tzid.strip():
            return None  # TZID= names nothing (RFC 5545 3.2.19 needs a value): floating
        zone = iana_zone(tzid)
        if zone is not None:
            return zone
        if tzid in self._custom:
            return self._custom[tzid]
        component = self.vtimezones.get(tzid)
        if component is None:
            return None
        if len(self._custom) >= MAX_CUSTOM_ZONES:
            raise BudgetExceeded(
                f"the message uses more than {MAX_CUSTOM_ZONES} time zones of its own",
                limit="time zones",
            )
        custom = custom_zone(component, work=self._work, years=self.years)
        self._custom[tzid] = custom
        return custom


def iana_zone(tzid: str) -> zoneinfo.ZoneInfo | None:
    name = iana_name(tzid)
    return zoneinfo_named(name) if name else None


@functools.cache
def _available_zones() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


@functools.lru_cache(maxsize=512)
def iana_name(tzid: str) -> str | None:
    """The IANA name a TZID stands for: itself, a Windows name's mapping, a suffix, or None."""
    zones = _available_zones()
    cleaned = tzid.strip().strip('"').strip()
    candidates = [cleaned, cleaned.strip("/")]
    windows = WINDOWS_TO_OLSON.get(cleaned)
    if windows:
        candidates.append(windows)
    parts = cleaned.strip("/").split("/")
    candidates += ["/".join(parts[i:]) for i in range(1, len(parts))]
    for candidate in candidates:
        name = zones.get(candidate.lower())
        if name:
            return _current_name(name)
    return None


# Old spellings that the CLDR Windows table (and old software) still writes, with the names the
# tz database uses today. Only renames: tzdata also links zones merged since 1970 (Reykjavik
# to Abidjan, Amsterdam to Brussels), which would show a reader the wrong city.
_RENAMED = {
    "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
    "America/Godthab": "America/Nuuk",
    "America/Indianapolis": "America/Indiana/Indianapolis",
    "Asia/Calcutta": "Asia/Kolkata",
    "Asia/Katmandu": "Asia/Kathmandu",
    "Asia/Rangoon": "Asia/Yangon",
    "Asia/Saigon": "Asia/Ho_Chi_Minh",
    "Atlantic/Faeroe": "Atlantic/Faroe",
    "Europe/Kiev": "Europe/Kyiv",
    "Pacific/Enderbury": "Pacific/Kanton",
    "Etc/UTC": "UTC",
    "Etc/UCT": "UTC",
    "Etc/Universal": "UTC",
    "Etc/Zulu": "UTC",
    "UCT": "UTC",
    "Universal": "UTC",
    "Zulu": "UTC",
}


def _current_name(name: str) -> str:
    renamed = _RENAMED.get(name, name)
    return renamed if renamed in _available_zones().values() else name


@functools.lru_cache(maxsize=512)
def zoneinfo_named(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


class BoundedCache:
    """A process-wide memo of at most ``size`` entries, safe to share between threads."""

    def __init__(self, size: int) -> None:
        self._data: dict[Any, Any] = {}
        self._size = size
        self._lock = threading.Lock()

    def get_or_build(self, key: Any, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._data:
                return self._data[key]
        value = build()
        with self._lock:
            self._data[key] = value
            while len(self._data) > self._size:
                self._data.pop(next(iter(self._data)))
        return value


_CUSTOM_ZONES = BoundedCache(256)


# A series without end is read ten years on (as the attachment's zone definitions are), and
# every table reaches a little past this year, so that answering an occurrence of an old
# series today finds its offsets.
ENDLESS_SERIES_YEARS = 10


def years_needed(calendar: Any) -> Years:
    """The years the calendar's own zones must cover: those of its event dates (budgets.py's
    event_dates) with a year's margin, ten more for a series without UNTIL, and at least up
    to two years from now."""
    found: list[int] = []
    endless = False
    for component in calendar.walk("VEVENT"):
        # Read through a plain dict of its properties (upper-cased names, as the component
        # keys them): the component's own get() raises and catches a KeyError for each of the
        # absent date properties (issue 14: this function took 30 us per sabre message).
        properties = dict(component.items())
        found += [value.year for _, value in event_dates(properties)]
        rules = properties.get("RRULE")
        for rule in rules if isinstance(rules, list) else ([rules] if rules is not None else []):
            if isinstance(rule, dict) and not rule.get("UNTIL"):
                endless = True
    this_year = dt.date.today().year
    if not found:
        return Years(this_year - 1, this_year + 2)
    last = max(found) + 1 + (ENDLESS_SERIES_YEARS if endless else 0)
    return Years(min(found) - 1, max(last, this_year + 2))


def custom_zone(
    component: Any, *, work: Work | None = None, years: Years | None = None
) -> dt.tzinfo | None:
    """The zone a VTIMEZONE defines, as a bounded table (:mod:`calendars.ical.vtimezone`), or
    None when the definition is unusable (the times then float). Raises
    :class:`BudgetExceeded` when it asks for more than Convoke computes.

    Each definition is built from its own content and cached by it: two calendars that both
    define "Customized Time Zone" differently get their own zones. A refused definition is
    remembered too, so that sending it again costs nothing.
    """
    try:
        digest = hashlib.sha256(component.to_ical()).digest()
    except LIBRARY_ERRORS:
        return None
    tzid = str(component.get("TZID", ""))
    years = years or Years()
    key = (digest, years)

    def build() -> dt.tzinfo | BudgetExceeded | None:
        try:
            return table_zone_build(tzid, observances_read(component), work=work, years=years)
        except BudgetExceeded as exc:
            return exc
        except LIBRARY_ERRORS:  # ICalendarError among them: an unusable definition
            return None

    zone = _CUSTOM_ZONES.get_or_build(key, build)
    if isinstance(zone, BudgetExceeded):
        raise BudgetExceeded(str(zone), limit=zone.limit)
    return zone


def zone_name(
    start: dt.date | dt.datetime | None, context: ZoneContext, tzid: str | None = None
) -> str | None:
    if isinstance(start, dt.datetime) and isinstance(start.tzinfo, zoneinfo.ZoneInfo):
        key = start.tzinfo.key
        return None if key == "UTC" else key
    if isinstance(start, dt.datetime) and start.tzinfo is not None and tzid:
        # A custom VTIMEZONE: the IANA zone it stands for when its name gives a city
        # ("(UTC+07:00) Bangkok, Hanoi, Jakarta") whose offsets match around the event.
        guessed = _zone_named_in(tzid, start)
        if guessed is not None:
            return guessed
    if context.x_wr_zone is not None and (
        not isinstance(start, dt.datetime) or start.tzinfo is UTC
    ):
        return context.x_wr_zone.key
    return None


_REGIONS = frozenset(
    {"Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe"}
    | {"Indian", "Pacific"}
)


@functools.cache
def _zones_by_city() -> dict[str, list[str]]:
    cities: dict[str, list[str]] = {}
    for name in sorted(_available_zones().values()):
        if name.split("/", 1)[0] in _REGIONS:  # not Canada/Eastern, US/Pacific and the like
            city = name.rsplit("/", 1)[1].replace("_", " ").lower()
            cities.setdefault(city, []).append(name)
    return cities


def _zone_named_in(label: str, moment: dt.datetime) -> str | None:
    words = " " + " ".join("".join(c if c.isalnum() else " " for c in label.lower()).split()) + " "
    found = sorted(
        (words.index(f" {city} "), name)
        for city, names in _zones_by_city().items()
        if f" {city} " in words
        for name in names
    )
    for _, name in found:
        zone = zoneinfo_named(name)
        samples = (moment + dt.timedelta(days=day) for day in range(-182, 183, 7))
        if all(s.utcoffset() == s.astimezone(zone).utcoffset() for s in samples):
            return _current_name(name)
    return None


@functools.lru_cache(maxsize=256)
def generated_timezone(name: str, first: dt.date, last: dt.date) -> Any:
    return icalendar.Timezone.from_tzid(name, first_date=first, last_date=last)


def tzids_of(component: Any) -> Iterable[str]:
    """The TZID parameters of a component's own properties (not of its subcomponents)."""
    for value in component.values():
        for item in value if isinstance(value, list) else [value]:
            params = getattr(item, "params", None)
            if params and "TZID" in params:  # most have none: no case-folded lookup
                yield str(params["TZID"])
