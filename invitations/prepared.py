"""What the worker needs to render a calendar message, computed once when it is stored.

The scheduling callback has parsed the body already (to check it); :func:`prepared_dump`
keeps that parse (:mod:`calendars.ical.stored`) and the ``text/calendar`` attachment built
from it (generated VTIMEZONEs included) in ``Delivery.prepared``, so that no attempt parses
the body again. :func:`prepared_load` reads it back; it returns None, and the worker parses
the stored body as before, when there is nothing usable: a message with a zone of the
sender's own, a delivery stored by an older version, or an attachment built with another
``CALENDAR_ITIP_ENABLED`` than today's.
"""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from calendars.ical import ICalendarError, ITipMessage, Method, build_attachment
from calendars.ical.stored import message_dump, message_load
from calendars.ical.types import LIBRARY_ERRORS

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedMessage:
    """A parsed iTIP message and the calendar attachment of its email."""

    message: ITipMessage
    attachment: bytes


def prepared_dump(message: ITipMessage, *, method: Method) -> bytes | None:
    """The stored form of ``message`` for an email of ``method``, or None when it cannot be
    kept (the worker then parses the body). Never raises for the message's content: what
    fails here fails again, with its reason, when the worker renders the body."""
    stored = message_dump(message)
    if stored is None:
        return None
    itip_enabled = bool(settings.CALENDAR_ITIP_ENABLED)
    try:
        attachment = build_attachment(message, itip_enabled=itip_enabled, method=method)
    except ICalendarError:
        return None
    except LIBRARY_ERRORS:
        # The library fails on something the parser let through; rendering reports it.
        logger.info("calendar attachment not prepared; the worker renders from the body")
        return None
    document: dict[str, Any] = {
        "message": stored,
        "attachment": attachment.decode("utf-8"),
        "itip": itip_enabled,
    }
    return zlib.compress(json.dumps(document, separators=(",", ":")).encode("utf-8"), 1)


def _document(data: bytes | memoryview | None) -> dict[str, Any] | None:
    if not data:
        return None
    try:
        document = json.loads(zlib.decompress(bytes(data)))
    except (zlib.error, ValueError):
        logger.warning("prepared message unreadable; rendering from the body")
        return None
    return document if isinstance(document, dict) else None


def prepared_load(data: bytes | memoryview | None) -> PreparedMessage | None:
    """The :class:`PreparedMessage` kept by :func:`prepared_dump`, or None (see above)."""
    document = _document(data)
    if document is None or document.get("itip") != bool(settings.CALENDAR_ITIP_ENABLED):
        return None
    message = message_load(document.get("message") or {})
    attachment = document.get("attachment")
    if message is None or not isinstance(attachment, str):
        return None
    return PreparedMessage(message=message, attachment=attachment.encode("utf-8"))


def prepared_message_load(data: bytes | memoryview | None) -> ITipMessage | None:
    """Only the parsed message of a stored form (an earlier version, to say what changed)."""
    document = _document(data)
    return message_load(document.get("message") or {}) if document is not None else None
