"""The bounded parser (calendars.ical.budgets.BoundedParser) builds, with the
get_factory_for_property and parse_and_add_property of calendars.ical.values.ValueParser,
exactly the tree that icalendar's methods build: the same property types, values,
parameters and errors, on every body of the shared corpus, the hostile bodies and
sabre-shaped messages."""

from __future__ import annotations

from typing import Any

import pytest
from icalendar.parser.ical.calendar import CalendarIcalParser
from icalendar.parser.parameter import Parameters

from bench.sabre import sabre_request
from calendars.ical import ICalendarError, budgets, parse_itip, values
from tests.hostile import generated_bodies, hostile_files
from tests.invitations.corpus import corpus_bodies


def _value(item: Any) -> tuple[Any, ...]:
    ical = item.to_ical() if hasattr(item, "to_ical") else None
    params = getattr(item, "params", None)
    return (
        type(item),
        ical,
        str(item) if isinstance(item, str | int) else repr(getattr(item, "dt", None)),
        getattr(item, "encoding", None),
        type(params),
        list(params.items()) if params is not None else None,
    )


def _tree(component: Any) -> tuple[Any, ...]:
    properties = [
        (name, [_value(item) for item in (value if isinstance(value, list) else [value])])
        for name, value in component.items()
    ]
    return (
        type(component),
        component.name,
        properties,
        list(component.errors),
        [_tree(sub) for sub in component.subcomponents],
    )


def _read(body: bytes) -> tuple[str, Any]:
    try:
        message = parse_itip(body)
    except ICalendarError as exc:
        return "error", str(exc)
    return "message", (message, _tree(message._calendar))


def _bodies() -> list[bytes]:
    corpus = [body for _, body in corpus_bodies()]
    if not corpus:
        pytest.skip("the shared corpus is absent (../shared/corpus/ics): nothing to compare")
    hostile = [path.read_bytes() for path in hostile_files()] + list(generated_bodies().values())
    return corpus + hostile + [sabre_request(i, recipient=1)[0] for i in range(5)]


def test_every_body_reads_into_the_tree_of_the_library_methods_when_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bodies = _bodies()
    ours = [_read(body) for body in bodies]
    # The reference: the two methods the bounded parser refines given back to icalendar.
    for method in ("get_factory_for_property", "parse_and_add_property"):
        monkeypatch.setattr(budgets.BoundedParser, method, getattr(CalendarIcalParser, method))
    library = [_read(body) for body in bodies]
    assert ours == library
    assert sum(kind == "message" for kind, _ in ours) > 100
    assert sum(kind == "error" for kind, _ in ours) > 10


def _parameters_made(body: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple[int, Any]:
    """How many Parameters icalendar makes while the body is read, and the calendar read."""
    made = []
    original = Parameters.__init__

    def counting(self: Parameters, *args: Any, **kwargs: Any) -> None:
        made.append(1)
        original(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(Parameters, "__init__", counting)
        calendar = budgets.calendars_read(body.decode("utf-8"))[0]
    return len(made), calendar


def test_value_is_built_once_when_its_type_would_only_copy_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = sabre_request(1, recipient=1)[0]
    ours, calendar = _parameters_made(body, monkeypatch)
    for method in ("get_factory_for_property", "parse_and_add_property"):
        monkeypatch.setattr(budgets.BoundedParser, method, getattr(CalendarIcalParser, method))
    library, _ = _parameters_made(body, monkeypatch)
    built_once = [
        item
        for component in calendar.walk()
        for value in component.values()
        for item in (value if isinstance(value, list) else [value])
        if type(item) in values._BUILT_ONCE
    ]
    assert len(built_once) >= 20  # SUMMARY, ATTENDEE, SEQUENCE, URL... of a sabre event
    # The library builds each such value twice (from_ical, then factory(value)): one
    # Parameters more each.
    assert library - ours == len(built_once)
