"""Building property values as ``icalendar``'s parser does, without its repeated work.

:class:`ValueParser` is ``icalendar``'s ``CalendarIcalParser`` with two of its template
methods refined for speed, through the library's public classes; the bounded parser
(:class:`calendars.ical.budgets.BoundedParser`) is one. Profiled over sabre-shaped REQUESTs
of 27 properties, the library made 84 ``Parameters`` and 54 ``TypesFactory.for_property``
calls a message (each of those reading VALUE and the name through case-folding dicts):

- a property's value type (``get_factory_for_property``) is remembered by name and VALUE
  (its only inputs, for the library's own types factory) in a bounded table, instead of
  being looked up two or three times per property;
- a TEXT, CAL-ADDRESS, URI, INTEGER or unknown value is built once, where
  ``parse_and_add_property`` builds it a second time (``factory(value)``) only to give it
  empty parameters, replaced at once by the line's.

With the empty ``Parameters`` of :mod:`calendars.ical.lines`, ``parse_itip`` went from
0.96 ms to 0.80 ms of CPU per sabre-shaped REQUEST, and from 3.1 ms to 2.65 ms on average
over the corpus (``bench/parse.py``, back to back, best of 3). ``tests/ical/test_parser.py``
reads every corpus, hostile and sabre body with these methods and with the library's own,
and compares the trees: property types, values, encodings, parameters and errors.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import icalendar
from icalendar.parser.content_line import Contentline
from icalendar.parser.ical.calendar import CalendarIcalParser
from icalendar.prop import vCalAddress, vInt, vText, vUnknown, vUri

# What ValueParser.get_factory_for_property remembers: (name, VALUE) -> value type, for
# icalendar's own types (TypesFactory.for_property, whose answer depends on nothing else).
_LIBRARY_TYPES = icalendar.Calendar.types_factory
_FACTORIES: dict[tuple[str, str | None], Any] = {}
_FACTORIES_KEPT = 1024

# Value types whose ``factory(factory.from_ical(text))`` equals ``factory.from_ical(text)``
# but for its (then replaced) parameters: their ``from_ical`` returns ``cls(text)`` and
# ``cls(value)`` of such an instance copies its text or number and its encoding.
_BUILT_ONCE = frozenset({vText, vUnknown, vCalAddress, vUri, vInt})

# A parameter of a Parameters, whose keys CaselessDict stores upper-cased.
_parameter = OrderedDict.get


class ValueParser(CalendarIcalParser):
    """``CalendarIcalParser`` building each property value once (see the module)."""

    def get_factory_for_property(self, name: str, params: Any) -> Any:
        # icalendar asks for a property's value type two or three times (handle_property,
        # parse_and_add_property, and BoundedParser's line budget), each time reading VALUE and the
        # name through case-folding dicts. The answer depends on the name and VALUE only, so
        # it is remembered (a bounded table: the names come from the sender).
        value = _parameter(params, "VALUE")
        if self._types_factory is not _LIBRARY_TYPES or not isinstance(value, str | None):
            return super().get_factory_for_property(name, params)
        key = (name, value.upper() if value is not None else None)
        factory = _FACTORIES.get(key)
        if factory is None:
            factory = super().get_factory_for_property(name, params)
            if len(_FACTORIES) < _FACTORIES_KEPT:
                _FACTORIES[key] = factory
        return factory

    def parse_and_add_property(
        self, name: str, params: Any, val: str, tzid: str | None, line: Contentline
    ) -> None:
        # ComponentIcalParser.parse_and_add_property builds the value twice for the types of
        # _BUILT_ONCE: from_ical returns an instance, which factory(instance) copies only to
        # give it empty parameters, replaced at once by the line's. The instance is kept.
        factory = self.get_factory_for_property(name, params)
        if tzid or factory not in _BUILT_ONCE:
            super().parse_and_add_property(name, params, val, tzid, line)
            return
        try:
            value = factory.from_ical(val)
        except (ValueError, TypeError) as exc:
            self.handle_property_parse_error(exc, name, params, val, line)
            return
        if type(value) is not factory:
            value = factory(value)
        value.params = params
        self._stack[-1].add(name, value, encode=False)  # self.component, checked by the caller
