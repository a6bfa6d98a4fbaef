"""The ``text/calendar`` part of an email (RFC 6047), built from a parsed message.

A component that needs no rewriting (every TZID it uses is defined, every value readable) is
sent as the sender wrote it: the content lines the parser noted for it
(:func:`calendars.ical.budgets.component_source`), folded again at 75 octets (RFC 5545
section 3.1), instead of being serialized again by ``icalendar``, whose folding goes
character by character: a line of at most 75 octets (20 of a sabre/dav VEVENT's 26) is copied,
a longer one is folded as ``icalendar`` folds it (``Contentline.to_ical``; by slices for an
ASCII line, :func:`calendars.ical.lines.fold_line`). What is serialized (the calendar's own
lines, rewritten components, VTIMEZONEs) is ``to_ical()`` with that folding too
(:func:`calendars.ical.lines.component_ical`: the head of a sabre/dav invitation in 0.049 ms
of CPU instead of 0.067 ms). For a sabre/dav
invitation, ``build_attachment`` went from about 0.6 ms of CPU to 0.25-0.3 ms, the average over
the shared corpus from 2.0-2.4 ms to 0.55 ms (``bench/attachment.py``). The sender's lines
also keep what a second serialization would change (its escapes, the order of its
parameters and properties), and they re-parse to what was read.

Only lines every reader reads alike are copied: ``icalendar`` reads leniently (whitespace
around ``;`` and ``=``, backslash escapes in parameters, a line without ``:``), and a stricter
client would read such a line otherwise, or not at all (vobject refuses Apple's
``X-TITLE=Hauptstraße 1-5\\; 4041 Linz``). A component with a line outside RFC 5545 section
3.1's grammar is serialized by ``icalendar`` as before. The check is that grammar as one
regular expression (:data:`_STRICT_CONTENT_LINE`, like ``icalendar``'s own ``UNSAFE_CHAR``):
it extracts nothing (``icalendar`` has parsed the line already) and costs 0.02 ms for a sabre
VEVENT's 26 lines, where asking ``icalendar`` to split each line again in strict mode costs
0.54 ms.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from collections.abc import Iterable
from copy import deepcopy
from typing import Any

import icalendar
from icalendar.prop import vBroken

from calendars.ical.budgets import calendars_read, component_source
from calendars.ical.lines import component_ical, fold_line
from calendars.ical.parse import decode
from calendars.ical.types import LIBRARY_ERRORS, Event, ITipMessage, Method
from calendars.ical.vtimezone import Years
from calendars.ical.zones import (
    BoundedCache,
    custom_zone,
    generated_timezone,
    iana_name,
    tzids_of,
)

# --- Building ---------------------------------------------------------------------------------


def build_attachment(
    message: ITipMessage, *, itip_enabled: bool, method: Method | str | None = None
) -> bytes:
    """The ``text/calendar`` body to attach to an email (RFC 6047 section 2.4).

    With ``itip_enabled`` the METHOD line is ``method`` (default: the message's own), so mail
    clients show their own buttons; without it METHOD is removed (a plain calendar file).
    Every TZID used has a VTIMEZONE (RFC 5545 section 3.6.5): a TZID that names an IANA or
    Windows zone gets a definition generated from the IANA database (the rules this module
    used to read the times, whatever the sender's VTIMEZONE said); a custom VTIMEZONE is kept
    when it is usable; a TZID that nothing identifies is dropped from its properties, so the
    times stay floating as they were read. The result re-parses to the same events.
    """
    chosen = Method(str(method).upper()) if method else message.method
    source = message._calendar
    if source is None:
        source = calendars_read(decode(message.raw))[0]
    calendar = icalendar.Calendar()
    for name, value in source.items():
        if name.upper() != "METHOD":
            calendar[name] = value
    if itip_enabled and chosen is not None:
        calendar.add("METHOD", chosen.value)
    if "PRODID" not in calendar:
        calendar.add("PRODID", "-//Convoke//Convoke//EN")
    if "VERSION" not in calendar:
        calendar.add("VERSION", "2.0")

    first, last = _date_span(message.events)
    # A custom zone's own definition is kept when it is well formed; senders' broken ones
    # (DATE-valued DTSTART, missing offsets) are rewritten from the offsets we read them with,
    # since other clients would read them differently from us. Only zones in use are read.
    vtimezones: dict[str, Any] = {}
    for component in source.walk("VTIMEZONE"):
        vtimezones.setdefault(str(component.get("TZID", "")), component)
    custom: dict[str, Any] = {}

    def defined(tzid: str) -> bool:
        if tzid not in custom:
            component = vtimezones.get(tzid)
            custom[tzid] = (
                _custom_definition(component, tzid, first, last)
                if tzid and component is not None and iana_name(tzid) is None
                else None
            )
        return custom[tzid] is not None

    used: set[str] = set()
    components: list[bytes] = []
    for component in source.subcomponents:
        if component.name == "VTIMEZONE":
            continue
        tzids = set(tzids_of(component))
        unknown = {t for t in tzids if iana_name(t) is None and not defined(t)}
        used |= tzids - unknown
        if unknown or _has_broken(component):
            components.append(component_ical(_cleaned(component, unknown)))
        else:
            components.append(_sender_lines(component) or component_ical(component))
    timezones: list[bytes] = []
    for tzid in sorted(used):
        if custom.get(tzid) is not None:
            timezones.append(component_ical(custom[tzid]))
            continue
        name = iana_name(tzid)
        if name is None or (name == "UTC" and tzid.upper() == "UTC"):
            continue
        timezones.append(_generated_timezone_ical(name, first, last, tzid))
    # The calendar's own lines, then its components one by one, each generated VTIMEZONE
    # serialized once per zone.
    end = b"END:VCALENDAR\r\n"
    head = component_ical(calendar)
    assert head.endswith(end)
    return b"".join([head[: -len(end)], *timezones, *components, end])


_LINE_OCTETS = 75  # RFC 5545 section 3.1, the line break excluded

# RFC 5545 section 3.1: contentline = name *(";" param) ":" value, with no backslash in a
# parameter (icalendar reads escapes there, the RFC does not) and no white space at the edges
# of an unquoted parameter value (icalendar strips it, the RFC keeps it).
_CONTROL = "\x00-\x08\x0a-\x1f\x7f"
_NAME = "[A-Za-z0-9-]+"
_SAFE = f'[^{_CONTROL}";:,\\\\]'
_SAFE_EDGE = f'[^{_CONTROL}";:,\\\\ \t]'
_PARAMETER_VALUE = f'(?:"[^{_CONTROL}"\\\\]*"|(?:{_SAFE_EDGE}(?:{_SAFE}*{_SAFE_EDGE})?)?)'
_STRICT_CONTENT_LINE = re.compile(
    f"{_NAME}(?:;{_NAME}={_PARAMETER_VALUE}(?:,{_PARAMETER_VALUE})*)*:[^{_CONTROL}]*"
)


def _sender_lines(component: Any) -> bytes | None:
    """``component`` as the sender wrote it, UTF-8 with CRLF line ends, every physical line
    at most 75 octets (RFC 5545 section 3.1); None when its lines were not noted whole and
    readable, or one is outside the RFC's grammar (the caller serializes the component)."""
    source = component_source(component)
    if source is None or source.line_error:
        return None
    lines: list[str] = []
    for line in source.content_lines():
        if _STRICT_CONTENT_LINE.fullmatch(line) is None:
            return None
        if len(line) <= _LINE_OCTETS and (line.isascii() or len(line.encode()) <= _LINE_OCTETS):
            lines.append(line)
        else:
            lines.append(fold_line(line))  # icalendar's folding, by slices for ASCII
    lines.append("")
    return "\r\n".join(lines).encode("utf-8")


@functools.lru_cache(maxsize=512)
def _generated_timezone_ical(name: str, first: dt.date, last: dt.date, tzid: str) -> bytes:
    """The VTIMEZONE generated from the IANA database for ``name`` over these years, under
    the TZID the message uses, serialized."""
    timezone = generated_timezone(name, first, last)
    if tzid != name:
        timezone = deepcopy(timezone)
        timezone["TZID"] = tzid
    return component_ical(timezone)


def _custom_definition(component: Any, tzid: str, first: dt.date, last: dt.date) -> Any:
    """The VTIMEZONE to attach for a zone that has no IANA name, or None if unusable."""
    zone = custom_zone(component, years=Years(first.year, last.year))
    if zone is None:
        return None
    if _well_formed(component):
        return component
    key = (hashlib.sha256(component.to_ical()).digest(), first, last)

    def build() -> Any:
        try:
            return icalendar.Timezone.from_tzinfo(zone, tzid=tzid, first_date=first, last_date=last)
        except LIBRARY_ERRORS:
            return None

    return _REWRITTEN_ZONES.get_or_build(key, build)


_REWRITTEN_ZONES = BoundedCache(256)


def _well_formed(component: Any) -> bool:
    """STANDARD/DAYLIGHT parts with a local DATE-TIME start and both offsets (RFC 5545 3.6.5)."""
    parts = component.subcomponents
    if not parts or _has_broken(component):
        return False
    for part in parts:
        if part.name not in ("STANDARD", "DAYLIGHT"):
            return False
        start = getattr(part.get("DTSTART"), "dt", None)
        if not isinstance(start, dt.datetime) or start.tzinfo is not None:
            return False
        for name in ("TZOFFSETFROM", "TZOFFSETTO"):
            if not isinstance(getattr(part.get(name), "td", None), dt.timedelta):
                return False
    return True


def _unreadable(item: Any) -> bool:
    # icalendar refuses SEQUENCE values over 2**31; they are still whole numbers we read.
    return isinstance(item, vBroken) and not (
        str(item.property_name).upper() == "SEQUENCE" and str(item).isdigit()
    )


def _has_broken(component: Any) -> bool:
    return any(
        _unreadable(item)
        for value in component.values()
        for item in (value if isinstance(value, list) else [value])
    ) or any(_has_broken(sub) for sub in component.subcomponents)


def _cleaned(component: Any, unknown: set[str]) -> Any:
    """A copy without unreadable properties, and without these TZIDs (the times float)."""
    copy = deepcopy(component)
    for part in copy.walk():
        for name, value in list(part.items()):
            items = value if isinstance(value, list) else [value]
            kept = [item for item in items if not _unreadable(item)]
            if len(kept) != len(items):
                del part[name]
                for item in kept:
                    part.add(name, item)
            for item in kept:
                params = getattr(item, "params", None)
                if params is not None and "TZID" in params and str(params["TZID"]) in unknown:
                    params.pop("TZID", None)
    return copy


def _date_span(events: Iterable[Event]) -> tuple[dt.date, dt.date]:
    days: list[dt.date] = []
    for event in events:
        for value in (event.start, event.end, event.recurrence_id, *event.rdates, *event.exdates):
            if value is not None:
                days.append(value.date() if isinstance(value, dt.datetime) else value)
        until = event.rrule.until if event.rrule else None
        if until is not None:
            days.append(until.date() if isinstance(until, dt.datetime) else until)
        elif event.rrule is not None and event.start is not None:
            start_day = event.start.date() if isinstance(event.start, dt.datetime) else event.start
            # An endless series: ten years of definitions (clients extend the last rule).
            days.append(start_day + dt.timedelta(days=366 * 10))
    if not days:
        today = dt.date.today()
        days = [today]
    # Whole years, so that generated VTIMEZONEs are shared between messages (a cache hit).
    first = dt.date(max(min(days).year - 1, 1), 1, 1)
    last = dt.date(min(max(days).year + 1, 9998), 12, 31)
    return first, last
