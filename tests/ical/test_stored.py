"""calendars.ical.stored keeps a parsed message as JSON values and reads it back equal, and
its stored form is the one the previous version wrote (message_dump's type-keyed fast path
against that version's isinstance chain, kept below as the reference): rows it wrote and
rows written now are read alike."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import zoneinfo
from typing import Any

import pytest

from bench.sabre import sabre_request
from calendars.ical import ICalendarError, ITipMessage, parse_itip
from calendars.ical.stored import (
    _DATACLASSES,
    _ENUMS,
    STORED_FORMAT,
    NotStorable,
    _dump,
    message_dump,
    message_load,
)
from tests.invitations.corpus import corpus_bodies

_TAG_OF = {cls: tag for tag, cls in _DATACLASSES.items()}
_ENUM_TAG_OF = {cls: tag for tag, cls in _ENUMS.items()}


def _reference_dump(value: Any) -> Any:
    """stored._dump as the previous version wrote it (commit 5921f77)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    enum_tag = _ENUM_TAG_OF.get(type(value))
    if enum_tag is not None:
        return {"e": enum_tag, "v": value.value}
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        zone = value.tzinfo
        if zone is None:
            return {"dt": value.isoformat()}
        if zone is dt.UTC:
            name = "UTC"
        elif isinstance(zone, zoneinfo.ZoneInfo) and zone.key:
            name = zone.key
        else:
            raise NotStorable(f"time zone {type(zone).__name__} has no name")
        return {"dt": value.replace(tzinfo=None).isoformat(), "z": name}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    if isinstance(value, tuple):
        return {"t": [_reference_dump(item) for item in value]}
    tag = _TAG_OF.get(type(value))
    if tag is not None:
        return {
            "c": tag,
            "f": {
                f.name: _reference_dump(getattr(value, f.name)) for f in dataclasses.fields(value)
            },
        }
    raise NotStorable(f"no stored form for {type(value).__name__}")


def _reference_message_dump(message: ITipMessage) -> dict[str, Any] | None:
    try:
        return {
            "format": STORED_FORMAT,
            "method": _reference_dump(message.method),
            "events": [_reference_dump(event) for event in message.events],
        }
    except NotStorable:
        return None


def _messages() -> list[ITipMessage]:
    bodies = [body for _, body in corpus_bodies()]
    if not bodies:
        pytest.skip("the shared corpus is absent (../shared/corpus/ics): nothing to compare")
    messages = []
    for body in bodies + [sabre_request(i, recipient=1)[0] for i in range(20)]:
        try:
            messages.append(parse_itip(body))
        except ICalendarError:
            continue
    return messages


def test_every_message_is_stored_as_the_previous_version_stored_it_when_dumped() -> None:
    messages = _messages()
    dumped = [message_dump(message) for message in messages]
    assert dumped == [_reference_message_dump(message) for message in messages]
    # Byte for byte once serialized, as the callback stores it.
    assert [json.dumps(d, separators=(",", ":")) for d in dumped] == [
        json.dumps(_reference_message_dump(m), separators=(",", ":")) for m in messages
    ]
    assert sum(d is not None for d in dumped) > 100
    assert any(d is None for d in dumped)  # a zone of the sender's own is not stored


def test_every_stored_message_loads_equal_to_the_parse_when_read() -> None:
    for message in _messages():
        stored = message_dump(message)
        if stored is None:
            continue
        loaded = message_load(json.loads(json.dumps(stored)))
        assert loaded is not None
        assert (loaded.method, loaded.events) == (message.method, message.events)


def test_subclass_values_take_the_general_path_when_dumped() -> None:
    class Text(str):
        pass

    class Number(int):
        pass

    values = [Text("x"), Number(3), (Text("a"), Number(1)), dt.date(2026, 1, 2)]
    assert [_dump(v) for v in values] == [_reference_dump(v) for v in values]
