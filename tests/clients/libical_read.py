"""Reads an iCalendar file with libical (Evolution's library, through Debian's
gir1.2-ical-3.0 and PyGObject) and prints, as JSON, what a client learns from it: METHOD,
and per VEVENT its UID, SEQUENCE, RECURRENCE-ID, organizer, attendees with PARTSTAT, start,
end (UTC instants, zones resolved from the file's VTIMEZONEs), their zone, and the rule.

Runs under the system's python3 (PyGObject comes from Debian, not from the project's venv).
Usage: python3 libical_read.py FILE.ics
"""

import datetime
import json
import sys

import gi

gi.require_version("ICalGLib", "3.0")
from gi.repository import ICalGLib  # noqa: E402

Kind = ICalGLib.ComponentKind
Prop = ICalGLib.PropertyKind


def address(value):
    text = (value or "").strip()
    return (text[7:] if text.lower().startswith("mailto:") else text).lower()


def moment(time, prop=None, root=None):
    """A time as a client places it. libical resolves the zone of DTSTART and DTEND itself;
    for another property (RECURRENCE-ID) its TZID is looked up among the file's VTIMEZONEs,
    as Evolution does."""
    if time is None or time.is_null_time():
        return None
    if time.is_date():
        day = f"{time.get_year():04d}-{time.get_month():02d}-{time.get_day():02d}"
        return {"utc": None, "date": day, "zone": None}
    zone = time.get_timezone()
    if zone is None and prop is not None and root is not None:
        tzid = prop.get_first_parameter(ICalGLib.ParameterKind.TZID_PARAMETER)
        if tzid is not None:
            zone = root.get_timezone(tzid.get_tzid())
    stamp = time.as_timet_with_zone(zone) if zone is not None else time.as_timet()
    utc = datetime.datetime.fromtimestamp(stamp, datetime.UTC)
    return {
        "utc": utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "date": None,
        "zone": zone.get_tzid() if zone is not None else ("UTC" if time.is_utc() else None),
    }


def properties(component, kind):
    found = []
    prop = component.get_first_property(kind)
    while prop is not None:
        found.append(prop)
        prop = component.get_next_property(kind)
    return found


def main():
    with open(sys.argv[1], encoding="utf-8") as handle:
        root = ICalGLib.Component.new_from_string(handle.read())
    method = root.get_first_property(Prop.METHOD_PROPERTY)
    events = []
    event = root.get_first_component(Kind.VEVENT_COMPONENT)
    while event is not None:
        organizer = event.get_first_property(Prop.ORGANIZER_PROPERTY)
        rrule = event.get_first_property(Prop.RRULE_PROPERTY)
        recurrence = event.get_first_property(Prop.RECURRENCEID_PROPERTY)
        attendees = {}
        for prop in properties(event, Prop.ATTENDEE_PROPERTY):
            partstat = prop.get_first_parameter(ICalGLib.ParameterKind.PARTSTAT_PARAMETER)
            attendees[address(prop.get_attendee())] = (
                partstat.as_ical_string().split("=", 1)[1]
                if partstat is not None
                else "NEEDS-ACTION"
            )
        status = event.get_first_property(Prop.STATUS_PROPERTY)
        events.append(
            {
                "uid": event.get_uid(),
                "sequence": event.get_sequence(),
                "recurrence_id": moment(event.get_recurrenceid(), recurrence, root)
                if recurrence is not None
                else None,
                "organizer": address(organizer.get_organizer()) if organizer is not None else None,
                "attendees": attendees,
                "start": moment(event.get_dtstart()),
                "end": moment(event.get_dtend()),
                "rrule": rrule.get_value_as_string() if rrule is not None else None,
                "status": status.get_value_as_string() if status is not None else None,
            }
        )
        event = root.get_next_component(Kind.VEVENT_COMPONENT)
    print(
        json.dumps(
            {
                "method": method.get_value_as_string() if method is not None else None,
                "events": events,
            }
        )
    )


main()
