"""The people and links of a VEVENT: ORGANIZER, ATTENDEEs (RFC 5545 section 3.8.4), and
the web and conference URLs an email may show.

Each function takes a VEVENT or its properties read once (``parse.properties_of``): both are
read with ``.get("NAME")``, the name upper-cased.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from calendars.ical.types import Attendee, Organizer, PartStat, clean_address


def _first(component: Any, name: str) -> Any:
    value = component.get(name)
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _text(component: Any, name: str) -> str:
    value = _first(component, name)
    return "" if value is None else str(value)


def web_url(value: str) -> str:
    """Only http(s) links go into emails; anything else (javascript:, data:) is dropped."""
    value = value.strip()
    return value if value[:8].lower() == "https://" or value[:7].lower() == "http://" else ""


def conference_url(component: Any) -> str:
    # RFC 7986 CONFERENCE first, then the vendor properties Google and Microsoft use.
    conferences = component.get("CONFERENCE")
    for value in conferences if isinstance(conferences, list) else [conferences]:
        if value is not None and web_url(str(value)):
            return web_url(str(value))
    for name in ("X-GOOGLE-CONFERENCE", "X-MICROSOFT-SKYPETEAMSMEETINGURL"):
        url = web_url(_text(component, name))
        if url:
            return url
    return ""


def _params(prop: Any) -> dict[str, Any]:
    """A property's parameters as a plain dict, keyed by their upper-cased names (icalendar's
    ``Parameters`` stores them so): several are read from each ATTENDEE, and a plain lookup
    costs no case-folding (issue 14)."""
    params = getattr(prop, "params", None)
    return dict(params.items()) if params else {}


def _param(params: dict[str, Any], name: str) -> str:
    value = params.get(name, "")
    if isinstance(value, list):
        value = value[0] if value else ""
    return " ".join(str(value).split())


def organizer_read(component: Any) -> Organizer | None:
    prop = _first(component, "ORGANIZER")
    if prop is None:
        return None
    return Organizer(address=clean_address(str(prop)), name=_param(_params(prop), "CN"))


def attendees_read(component: Any) -> Iterator[Attendee]:
    props = component.get("ATTENDEE")
    if props is None:
        return
    for prop in props if isinstance(props, list) else [props]:
        params = _params(prop)
        partstat_text = _param(params, "PARTSTAT").upper() or PartStat.NEEDS_ACTION.value
        try:
            partstat: PartStat | str = PartStat(partstat_text)
        except ValueError:
            partstat = partstat_text
        yield Attendee(
            address=clean_address(str(prop)),
            name=_param(params, "CN"),
            partstat=partstat,
            role=_param(params, "ROLE").upper() or "REQ-PARTICIPANT",
            rsvp=_param(params, "RSVP").upper() == "TRUE",
        )
