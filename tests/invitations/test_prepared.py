"""invitations.prepared keeps the callback's parse and the calendar attachment for the
worker. What prepared_dump writes is what the previous version wrote for the same message
(rows it left in the outbox are read alike), and prepared_load gives back the message and
the attachment build_attachment makes."""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest

from bench.sabre import sabre_request
from calendars.ical import Method, build_attachment, parse_itip
from invitations.prepared import prepared_dump, prepared_load
from tests.ical.test_stored import _reference_message_dump


@pytest.mark.parametrize("itip_enabled", [True, False])
def test_prepared_message_loads_as_parsed_and_built_when_read(
    settings: Any, itip_enabled: bool
) -> None:
    settings.CALENDAR_ITIP_ENABLED = itip_enabled
    for index in range(5):
        message = parse_itip(sabre_request(index, recipient=1)[0])

        prepared = prepared_load(prepared_dump(message, method=Method.REQUEST))

        assert prepared is not None
        assert (prepared.message.method, prepared.message.events) == (
            message.method,
            message.events,
        )
        expected = build_attachment(message, itip_enabled=itip_enabled, method=Method.REQUEST)
        assert prepared.attachment == expected


def test_row_written_by_the_previous_version_is_read_when_loaded(
    settings: Any,
) -> None:
    settings.CALENDAR_ITIP_ENABLED = True
    message = parse_itip(sabre_request(11, recipient=1)[0])
    attachment = build_attachment(message, itip_enabled=True, method=Method.REQUEST)
    # The document as the previous version's prepared_dump wrote it (its stored form kept
    # as the reference in tests/ical/test_stored.py).
    document = {
        "message": _reference_message_dump(message),
        "attachment": attachment.decode("utf-8"),
        "itip": True,
    }
    previous = zlib.compress(json.dumps(document, separators=(",", ":")).encode("utf-8"), 1)

    assert prepared_dump(message, method=Method.REQUEST) == previous
    prepared = prepared_load(previous)
    assert prepared is not None
    assert prepared.message.events == message.events and prepared.attachment == attachment
