"""What the RSVP page computes on an organizer's event whose recurrence never matches
(issue 11, finding 3).

The page reads the organizer's stored copy, then works out when the series ends (the
links' expiry, "event over", :func:`invitations.rendering.occurrences.last_end`) and, for one
occurrence, whether it is one (:func:`calendars.ical.occurrence_event`). With a rule that
matches no day both walked to the year 9999: 19 s of CPU per page. They are the bounded
functions of rendering now. A real CalDAV server cannot hold such a series for the page to
fetch (Radicale walks the rule too when it stores it), so the functions are called here on
the bytes the page would read. The bound is generous; the figures are in bench/.
"""

from __future__ import annotations

import datetime as dt
import time

from calendars.ical import OccurrenceNotFound, occurrence_event, parse_itip
from invitations.rendering.occurrences import last_end
from tests.invitations.rsvp_support import event_body, future

BOUND_SECONDS = 5.0
NEVER = "FREQ=SECONDLY;COUNT=5000;BYMONTH=2;BYMONTHDAY=30"


def _stored() -> bytes:
    return event_body(
        uid="never@dav.example.org",
        organizer="alice@x.com",
        attendees=[("bob@x.com", "NEEDS-ACTION")],
        rrule=NEVER,
    )


def test_series_end_is_unknown_at_once_when_the_rule_never_matches() -> None:
    started = time.monotonic()
    ended = last_end(parse_itip(_stored()).events)
    assert time.monotonic() - started < BOUND_SECONDS
    assert ended is None  # treated like an endless series: the links get the fixed lifetime


def test_occurrence_is_looked_up_at_once_when_the_rule_never_matches() -> None:
    key = (future() + dt.timedelta(days=7)).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    started = time.monotonic()
    try:
        event = occurrence_event(_stored(), recurrence_id=key)
    except OccurrenceNotFound:
        event = None
    assert time.monotonic() - started < BOUND_SECONDS
    assert event is None or event.recurrence_id is not None
