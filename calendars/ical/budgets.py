"""Budgets for reading iCalendar data that someone else wrote (docs/design.md section 1.5).

Every body Convoke reads comes from outside, so the reader refuses, with a
:class:`~calendars.ical.types.BudgetExceeded` that names the limit, whatever would cost more
than a real calendar ever needs: too many components, properties or parameters, components
nested too deep, a content line too long for its kind of value, a TZID too long, too many
dates in one list, a time-zone definition with too many rules, and dates outside the years a
calendar means (:data:`YEAR_MIN` to :data:`YEAR_MAX`).

The counting happens inside ``icalendar``'s own parser (:class:`BoundedParser`, a subclass of
its ``CalendarIcalParser``, which is made to be refined that way), so a body is refused as soon
as it passes a limit instead of after it has been read whole. The parser also never resolves a
TZID while parsing: ``icalendar`` would otherwise build a zone from the sender's VTIMEZONE and
keep it in a process-wide cache, and look names up on the file system; Convoke resolves every
TZID itself (:mod:`calendars.ical.zones`).

While it reads, the parser notes on each top-level component (a VCALENDAR's VEVENT, VTODO,
VTIMEZONE...) the content lines it was read from (:class:`SourceLines`,
:func:`component_source`), so that the attachment can send the sender's own lines instead of
serializing the component again (:mod:`calendars.ical.attachment`).

Its property values are built by :class:`calendars.ical.values.ValueParser`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import icalendar
from icalendar.parser.content_line import Contentline
from icalendar.prop import vBinary, vBroken, vText, vUnknown, vUri

from calendars.ical.lines import content_line_parts, content_lines_read
from calendars.ical.types import BudgetExceeded
from calendars.ical.values import ValueParser

# The years of event dates (DTSTART, DTEND, RECURRENCE-ID, RDATE, EXDATE, UNTIL). No calendar
# means an event before 1900 or after 2200; years like 0001 or 9999 are errors or attacks, and
# Python's dates end in 9999. The start of a VTIMEZONE rule is not an event date: Outlook and
# Exchange write 1601 there.
YEAR_MIN = 1900
YEAR_MAX = 2200


@dataclass(frozen=True)
class ParseLimits:
    """What one body may hold. The defaults let every real message of the shared corpus through
    (the largest iTIP message there has 9 components; the largest calendar 696) and keep the
    cost of reading a 1 MiB body well under a second."""

    max_bytes: int = 2 * 1024 * 1024
    max_lines: int = 50_000  # physical lines, folded ones included: counted before splitting
    max_depth: int = 8  # VCALENDAR > VEVENT > VALARM is 3
    max_components: int = 1000
    max_properties: int = 10_500  # a meeting of 10,000 attendees is read
    max_parameters: int = 40_000
    max_parameters_per_property: int = 40
    max_line_chars: int = 8 * 1024  # a content line, unfolded
    max_text_line_chars: int = 2 * 1024 * 1024  # DESCRIPTION, ATTACH, X-ALT-DESC and such
    max_parameter_chars: int = 1024  # the parameters of a long text line
    max_tzid_bytes: int = 255
    max_list_items: int = 2000  # dates in RDATE/EXDATE, CATEGORIES, FREEBUSY periods, in all
    max_rule_chars: int = 512  # one RRULE or EXRULE value
    max_zone_rules: int = 150  # STANDARD/DAYLIGHT parts of one VTIMEZONE


LIMITS = ParseLimits()


@dataclass(frozen=True, slots=True)
class SourceLines:
    """Where a top-level component was read from: ``lines[start:stop]``, its BEGIN and END
    lines included, of the body's unfolded content lines (RFC 5545 section 3.1, as
    ``icalendar`` split the text), and whether the parser met a line it could not read as
    written in it (``line_error``: a line ``icalendar`` skipped, ``handle_line_parse_error``,
    or an END naming another component than the one it closed).

    It describes the component as read: a (deep) copy of the component, made to be changed,
    carries no source (``None``).
    """

    lines: Sequence[Contentline] = field(repr=False)
    start: int
    stop: int
    line_error: bool

    def content_lines(self) -> Sequence[Contentline]:
        return self.lines[self.start : self.stop]

    def __deepcopy__(self, memo: dict[int, Any]) -> None:
        return None


# The attribute of a parsed top-level component that holds its SourceLines.
_SOURCE_ATTRIBUTE = "convoke_source"


def component_source(component: Any) -> SourceLines | None:
    """The :class:`SourceLines` :class:`BoundedParser` noted for ``component`` (a top-level
    component it read whole: not a VTIMEZONE whose rules it skipped), or None."""
    source = getattr(component, _SOURCE_ATTRIBUTE, None)
    return source if isinstance(source, SourceLines) else None


# Values that are read as text whatever their length: their cost grows with the length only.
_LONG_VALUE_TYPES: tuple[type, ...] = (vText, vBinary, vUri, vUnknown)
_LIST_PROPERTIES = frozenset({"RDATE", "EXDATE", "CATEGORIES", "FREEBUSY", "RESOURCES"})
_RULE_PROPERTIES = frozenset({"RRULE", "EXRULE"})


class BoundedParser(ValueParser):
    """``icalendar``'s calendar parser, counting as it goes and stopping at the first limit.

    ``datetime_names`` is empty so that no TZID is resolved while parsing (date-times come out
    as written, naive, with their TZID parameter), and VTIMEZONEs are not put in icalendar's
    process-wide zone cache.
    """

    datetime_names: ClassVar[tuple[str, ...]] = ()
    # With a predicate, the rules of a VTIMEZONE whose TZID it accepts (a zone the IANA
    # database defines, which Convoke reads its times with whatever the sender wrote) are
    # counted against the budgets but not built: only its TZID is kept.
    zone_known: ClassVar[Callable[[str], bool] | None] = None

    def __init__(self, data: Any, component_factory: Any, types_factory: Any) -> None:
        super().__init__(data, component_factory, types_factory)
        self.limits = LIMITS
        self._components_seen = 0
        self._properties_seen = 0
        self._parameters_seen = 0
        self._list_items_seen = 0
        self._unread_depth = 0  # > 0: inside a VTIMEZONE whose rules are not built
        # The top-level component being read (SourceLines): the index of the current line in
        # the content lines, of its BEGIN line, and what makes its lines unusable as they are.
        self._line_index = 0
        self._top_start = 0
        self._top_line_error = False
        self._top_partial = False  # a VTIMEZONE whose rules are not built

    def parse_content_lines(self) -> None:
        # The loop of ComponentIcalParser.parse_content_lines, with the line checked before
        # icalendar splits it into name, parameters and value (the costly part of a long line),
        # and its index noted (the iterator is initialize_parsing's, over _content_lines).
        for index, line in enumerate(self._content_lines_iterator):
            if not line:
                continue
            self._check_line(line)
            self._line_index = index
            if self._unread_depth:
                self._unread(line)
                continue
            try:
                name, params, vals = content_line_parts(line)
            except ValueError as exc:
                self.handle_line_parse_error(exc)
                continue
            uname = name.upper()
            if uname == "BEGIN":
                self.handle_begin_component(vals)
            elif uname == "END":
                self.handle_end_component(vals)
            else:
                self.handle_property(uname, params, vals, line)

    def _unread(self, line: Contentline) -> None:
        """Count a line of a VTIMEZONE whose rules are not built; only BEGIN and END lines are
        split (a content line's name ends at its first ``;`` or ``:``, RFC 5545 3.1)."""
        end = len(line)
        for separator in (";", ":"):
            found = line.find(separator)
            if 0 <= found < end:
                end = found
        name = line[:end].strip().upper()
        if name == "BEGIN":
            self._components_seen += 1
            if self._components_seen > self.limits.max_components:
                raise BudgetExceeded(
                    f"the data holds more than {self.limits.max_components} components",
                    limit="components",
                )
            if len(self._stack) + self._unread_depth + 1 > self.limits.max_depth:
                raise BudgetExceeded(
                    f"components are nested more than {self.limits.max_depth} deep",
                    limit="nesting depth",
                )
            self._unread_depth += 1
        elif name == "END":
            self._unread_depth -= 1
            if not self._unread_depth:  # the VTIMEZONE's own END
                self.handle_end_component(line.parts()[2])
        else:
            self._properties_seen += 1
            if self._properties_seen > self.limits.max_properties:
                raise BudgetExceeded(
                    f"the data holds more than {self.limits.max_properties} properties",
                    limit="properties",
                )

    def _check_line(self, line: Contentline) -> None:
        limits = self.limits
        count = _parameter_count(line, limits)
        if count > limits.max_parameters_per_property:
            raise BudgetExceeded(
                f"a property has {count} parameters; at most "
                f"{limits.max_parameters_per_property} are read",
                limit="parameters",
            )
        self._parameters_seen += count
        if self._parameters_seen > limits.max_parameters:
            raise BudgetExceeded(
                f"the data holds more than {limits.max_parameters} parameters",
                limit="parameters",
            )
        if len(line) <= limits.max_line_chars:
            return
        if len(line) > limits.max_text_line_chars:
            raise BudgetExceeded(
                f"a content line is {len(line)} characters long; at most "
                f"{limits.max_text_line_chars} are read",
                limit="line length",
            )
        # A long line is only read when its parameters are short (they are the costly part).
        head = Contentline(line[: limits.max_parameter_chars])
        if head.value_separator_index() < 0:
            raise BudgetExceeded(
                f"a content line of {len(line)} characters has more than "
                f"{limits.max_parameter_chars} characters before its value",
                limit="line length",
            )

    def handle_line_parse_error(self, exception: Exception) -> None:
        if len(self._stack) > 1:
            self._top_line_error = True
        super().handle_line_parse_error(exception)

    def handle_begin_component(self, vals: str) -> None:
        self._components_seen += 1
        limits = self.limits
        if self._components_seen > limits.max_components:
            raise BudgetExceeded(
                f"the data holds more than {limits.max_components} components",
                limit="components",
            )
        if len(self._stack) + 1 > limits.max_depth:
            raise BudgetExceeded(
                f"components are nested more than {limits.max_depth} deep",
                limit="nesting depth",
            )
        if len(vals) > 255:
            raise BudgetExceeded(
                "a component name is longer than 255 characters", limit="line length"
            )
        super().handle_begin_component(vals)
        if len(self._stack) == 2:
            self._top_start = self._line_index
            self._top_line_error = self._top_partial = False

    def handle_end_component(self, vals: str) -> None:
        # ComponentIcalParser.handle_end_component without the process-wide zone cache, noting
        # the lines of a top-level component.
        if not self._stack:
            raise ValueError("END encountered without an accompanying BEGIN!")
        component = self._stack.pop()
        if not self._stack:
            self._components.append(component)
            return
        self._stack[-1].add_component(component)
        if vals.upper() != component.name:
            self._top_line_error = True
        if len(self._stack) == 1 and not self._top_partial:
            source = SourceLines(
                lines=self._content_lines,
                start=self._top_start,
                stop=self._line_index + 1,
                line_error=self._top_line_error,
            )
            setattr(component, _SOURCE_ATTRIBUTE, source)

    def prepare_components(self) -> None:
        # CalendarIcalParser parses everything a second time when a VTIMEZONE comes after the
        # event using it, to attach icalendar's zones; Convoke attaches its own (zones.py).
        return

    def handle_property(self, name: str, params: Any, vals: str, line: Contentline) -> None:
        limits = self.limits
        self._properties_seen += 1
        if self._properties_seen > limits.max_properties:
            raise BudgetExceeded(
                f"the data holds more than {limits.max_properties} properties",
                limit="properties",
            )
        tzid = params.get("TZID") if params else None
        if tzid is not None and len(str(tzid).encode("utf-8")) > limits.max_tzid_bytes:
            raise BudgetExceeded(
                f"a TZID is longer than {limits.max_tzid_bytes} bytes", limit="TZID length"
            )
        if len(line) > limits.max_line_chars and not issubclass(
            self._factory(name, params), _LONG_VALUE_TYPES
        ):
            raise BudgetExceeded(
                f"{name[:40]} is {len(line)} characters long; at most "
                f"{limits.max_line_chars} are read for this property",
                limit="line length",
            )
        if name in _RULE_PROPERTIES and len(vals) > limits.max_rule_chars:
            raise BudgetExceeded(
                f"{name} is {len(vals)} characters long; at most {limits.max_rule_chars} are read",
                limit="recurrence rule length",
            )
        if name in _LIST_PROPERTIES:
            self._list_items_seen += vals.count(",") + 1
            if self._list_items_seen > limits.max_list_items:
                raise BudgetExceeded(
                    f"the data lists more than {limits.max_list_items} values in "
                    f"{', '.join(sorted(_LIST_PROPERTIES))}",
                    limit="list values",
                )
        super().handle_property(name, params, vals, line)
        zone_known = type(self).zone_known
        if (
            name == "TZID"
            and zone_known is not None
            and self._stack
            and self._stack[-1].name == "VTIMEZONE"
            and not self._stack[-1].subcomponents
            and zone_known(vals)
        ):
            self._unread_depth = 1
            self._top_partial = True

    def _factory(self, name: str, params: Any) -> Any:
        return self.get_factory_for_property(name, params)


def _parameter_count(line: Contentline, limits: ParseLimits) -> int:
    """How many parameters a content line writes (its ``;`` before the value), counted
    before icalendar parses them: repeated names cost as much to parse as distinct ones."""
    colon = line.find(":")
    if colon < 0:
        return line.count(";", 0, limits.max_line_chars)
    if line.find('"', 0, colon) >= 0:  # a quoted parameter value may hold ":" (RFC 5545 3.1)
        colon = Contentline(line[: limits.max_line_chars]).value_separator_index()
        if colon < 0:
            colon = min(len(line), limits.max_line_chars)
    return line.count(";", 0, colon)


class _UntrustedCalendar(icalendar.Calendar):
    """Only a way to give ``from_ical`` the bounded parser; the results are plain Calendars."""

    parser: ClassVar[type[BoundedParser]] = BoundedParser

    @classmethod
    def _get_ical_parser(cls, st: str | bytes) -> Any:
        return cls.parser(st, cls._get_component_factory(), cls.types_factory)


def calendars_read(text: str, *, zone_known: Callable[[str], bool] | None = None) -> list[Any]:
    """Every top-level component of ``text``, read by :class:`BoundedParser`.

    With ``zone_known``, a VTIMEZONE whose TZID it accepts keeps only its TZID (its rules are
    counted, not built): for reading a message, never for an object written back.
    Raises :class:`BudgetExceeded` at the first limit passed, and what ``icalendar`` raises
    for malformed data (the caller translates that into ``ICalendarError``).
    """
    if len(text) > LIMITS.max_bytes:
        raise BudgetExceeded(
            f"the data is {len(text)} characters long; at most {LIMITS.max_bytes} are read",
            limit="size",
        )
    newlines = text.count("\n") or text.count("\r")
    if newlines > LIMITS.max_lines:
        raise BudgetExceeded(
            f"the data has {newlines} lines; at most {LIMITS.max_lines} are read", limit="lines"
        )
    # from_ical's parser takes the content lines as they are (a list, typed only as text).
    lines: Any = content_lines_read(text)
    reader = _UntrustedCalendar if zone_known is None else _known_zones_reader(zone_known)
    return list(reader.from_ical(lines, multiple=True))


_READERS: dict[Callable[[str], bool], type[_UntrustedCalendar]] = {}


def _known_zones_reader(zone_known: Callable[[str], bool]) -> type[_UntrustedCalendar]:
    reader = _READERS.get(zone_known)
    if reader is None:
        parser = type(
            "KnownZonesParser", (BoundedParser,), {"zone_known": staticmethod(zone_known)}
        )
        reader = type("KnownZonesCalendar", (_UntrustedCalendar,), {"parser": parser})
        _READERS[zone_known] = reader
    return reader


# --- Years ------------------------------------------------------------------------------------

EVENT_DATE_PROPERTIES = ("DTSTART", "DTEND", "RECURRENCE-ID", "RDATE", "EXDATE")


def year_check(value: dt.date | dt.datetime, what: str) -> None:
    """Refuse a date outside :data:`YEAR_MIN`..:data:`YEAR_MAX` (``what`` names it)."""
    if not YEAR_MIN <= value.year <= YEAR_MAX:
        raise BudgetExceeded(
            f"{what} is in the year {value.year}; event dates must be between {YEAR_MIN} and "
            f"{YEAR_MAX}",
            limit="year range",
        )


def event_dates(component: Any) -> Iterable[tuple[str, dt.date | dt.datetime]]:
    """``(property name, value)`` for every date of a VEVENT that names when it happens,
    including the UNTIL of its rules, as written (naive when a TZID or nothing is given)."""
    for name in EVENT_DATE_PROPERTIES:
        values = component.get(name)
        if values is None:
            continue
        for entry in values if isinstance(values, list) else [values]:
            if isinstance(entry, vBroken):
                continue  # reported by the reader (parse.py) with the line it is on
            if hasattr(entry, "dts"):
                for item in entry.dts:
                    value = item.dt
                    if isinstance(value, tuple):  # PERIOD
                        value = value[0]
                    if isinstance(value, dt.date):
                        yield name, value
            else:
                value = getattr(entry, "dt", None)
                if isinstance(value, dt.date):
                    yield name, value
    for name in _RULE_PROPERTIES:
        rules = component.get(name)
        for rule in rules if isinstance(rules, list) else [rules]:
            if rule is None or isinstance(rule, vBroken) or not hasattr(rule, "get"):
                continue
            for until in rule.get("UNTIL") or []:
                if isinstance(until, dt.date):
                    yield f"{name} UNTIL", until


def event_years_check(component: Any) -> None:
    """Every date of a VEVENT must fall within the calendar years (:func:`year_check`)."""
    for name, value in event_dates(component):
        year_check(value, name)
