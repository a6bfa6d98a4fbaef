"""Writes on the shared schema (docs/style.md rule 2), one module per concern:

- :mod:`.transitions`: the booking state machine (:func:`booking_transition`) and the moves
  built on it (confirm, deny, cancel, the bookee's answer, a move made in Google, the
  operators' republish);
- :mod:`.decisions`: a decision from the API, a link or an operator, made after reading the
  booking's Google event (:func:`booking_decide`);
- :mod:`.requests`: a bookee asks for a slot (:func:`booking_request`);
- :mod:`.publish`: Convoke to the provider: make a booking's calendar reflect its status;
- :mod:`.schedules`: changes to a booking schedule;
- :mod:`.keys`: rotation of the key that encrypts stored secrets.
"""

from calendars.services.decisions import Decision, booking_decide, booking_google_refresh
from calendars.services.keys import encrypted_fields_rotate
from calendars.services.publish import (
    PublishOutcome,
    booking_publish,
    booking_publish_enqueue,
    bookings_publish_sweep,
)
from calendars.services.publish_steps import BookingPublishFailed, booking_event_body
from calendars.services.requests import (
    BookingRequestInvalid,
    ScheduleUnavailable,
    SlotUnavailable,
    booking_request,
)
from calendars.services.schedules import ScheduleUpdateInvalid, schedule_update
from calendars.services.transitions import (
    ALLOWED_TRANSITIONS,
    BookingTransitionError,
    TransitionResult,
    booking_attendee_answer_record,
    booking_cancel,
    booking_confirm,
    booking_deny,
    booking_move_record,
    booking_publish_retry,
    booking_republish,
    booking_transition,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "BookingPublishFailed",
    "BookingRequestInvalid",
    "BookingTransitionError",
    "Decision",
    "PublishOutcome",
    "ScheduleUnavailable",
    "ScheduleUpdateInvalid",
    "SlotUnavailable",
    "TransitionResult",
    "booking_attendee_answer_record",
    "booking_cancel",
    "booking_confirm",
    "booking_decide",
    "booking_deny",
    "booking_event_body",
    "booking_google_refresh",
    "booking_move_record",
    "booking_publish",
    "booking_publish_enqueue",
    "booking_publish_retry",
    "booking_republish",
    "booking_request",
    "booking_transition",
    "bookings_publish_sweep",
    "encrypted_fields_rotate",
    "schedule_update",
]
