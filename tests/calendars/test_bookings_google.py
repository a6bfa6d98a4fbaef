"""Bookings on a Google calendar (docs/design.md 1.3), against the fake Google server.

Each test drives the booking services and lets the provider sync run (the Celery tasks run
eagerly after the commit), then checks the booking, its recorded transitions, exactly what
Google was asked (method, sendUpdates, status) and the emails Google would have sent.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from calendars import services
from calendars.models import (
    Booking,
    BookingStatus,
    Calendar,
    GoogleAccount,
    PublishState,
    Schedule,
    TransitionSource,
)
from invitations.models import Delivery, DeliveryKind
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.messages_api import FakeMessagesApi
from tests.fixtures import Commit, GoogleSetup

pytestmark = pytest.mark.django_db

BOOKEE = "bookee@example.net"


@pytest.fixture
def commit(django_capture_on_commit_callbacks: Commit) -> Commit:
    """Run what the code schedules after commit (tasks, emails) when the block ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def flag_on(settings) -> None:  # type: ignore[no-untyped-def]
    settings.GOOGLE_INVITE_ENABLED = True


@pytest.fixture
def flag_off(settings) -> None:  # type: ignore[no-untyped-def]
    settings.GOOGLE_INVITE_ENABLED = False


def slot(days: int = 3, hour: int = 9) -> dt.datetime:
    moment = timezone.now() + dt.timedelta(days=days)
    return moment.replace(hour=hour, minute=0, second=0, microsecond=0)


def request_booking(
    commit: Commit, schedule: Schedule, *, start: dt.datetime | None = None, email_: str = BOOKEE
) -> Booking:
    with commit():
        booking = services.booking_request(
            schedule_id=schedule.pk,
            attendee_name="Bob Bookee",
            attendee_email=email_,
            start=start or slot(),
            attendee_language="fr",
            attendee_time_zone="America/Montreal",
            description="About the project",
        )
    booking.refresh_from_db()
    return booking


def transitions(booking: Booking) -> list[tuple[str, str, str]]:
    return [(t.from_status, t.to_status, t.source) for t in booking.transitions.all()]


def event_calls(fake: FakeGoogleCalendar) -> list[tuple[str, str | None, str | None]]:
    return [c for c in fake.api_calls() if c[0].startswith("events.")]


def outbox(fake: FakeGoogleCalendar) -> list[tuple[str, str, str]]:
    return [(m.kind, m.recipient, m.status) for m in fake.outbox]


def calendar_part(message: mail.EmailMessage) -> str:
    parsed = email.message_from_bytes(message.message().as_bytes(), policy=email.policy.default)
    for part in parsed.walk():
        if part.get_content_type() == "text/calendar":
            return part.get_content()
    raise AssertionError("no text/calendar part")


@pytest.fixture
def schedule(google_schedule: Schedule) -> Iterator[Schedule]:
    yield google_schedule


# --- GOOGLE_INVITE_ENABLED on: Google sends the invitations ---------------------------------------


def test_request_inserts_tentative_event_and_google_invites_bookee_when_flag_on(
    flag_on: None, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    booking = request_booking(commit, schedule)
    calendar_id = schedule.calendar.remote_id
    assert booking.status == BookingStatus.REQUESTED
    assert (booking.publish_state, booking.provider_status) == (PublishState.PUBLISHED, "requested")
    assert transitions(booking) == [("", "requested", "api")]
    assert [c[0] for c in google_fake.api_calls()] == ["freebusy.query", "events.insert"]
    assert event_calls(google_fake) == [("events.insert", "all", "tentative")]
    insert = google_fake.requests_for("events.insert")[0]
    assert insert.body["id"] == booking.google_event_id
    # The subscriber is an attendee too: the calendar's own entry, which Google marks as the
    # organizer's (and "self"), still to answer; Google invites only the bookee.
    assert insert.body["attendees"] == [
        {
            "email": calendar_id,
            "displayName": schedule.owner.full_name,
            "organizer": True,
            "responseStatus": "needsAction",
        },
        {"email": BOOKEE, "displayName": "Bob Bookee"},
    ]
    event = google_fake.event(calendar_id, booking.google_event_id or "")
    assert event is not None and event["status"] == "tentative"
    assert event["organizer"]["email"] == calendar_id
    assert [
        (a["email"], a.get("organizer", False), a.get("self", False), a["responseStatus"])
        for a in event["attendees"]
    ] == [(calendar_id, True, True, "needsAction"), (BOOKEE, False, False, "needsAction")]
    assert outbox(google_fake) == [("invitation", BOOKEE, "tentative")]
    # Our email to the subscriber, with the Confirm and Deny links; none to the bookee.
    assert [m.to for m in mail.outbox] == [[schedule.owner.email]]
    body = mail.outbox[0].body
    assert "/bookings/decide/?token=" in body and "action=confirm" in body and "action=deny" in body


def test_confirm_patches_event_to_confirmed_with_updates_sent_when_flag_on(
    flag_on: None, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    booking = request_booking(commit, schedule)
    with commit():
        result = services.booking_confirm(booking_id=booking.pk, source=TransitionSource.API)
    booking.refresh_from_db()
    assert result.changed and booking.status == BookingStatus.BOOKED
    assert booking.publish_state == PublishState.PUBLISHED
    assert transitions(booking) == [("", "requested", "api"), ("requested", "booked", "api")]
    assert event_calls(google_fake) == [
        ("events.insert", "all", "tentative"),
        ("events.patch", "all", "confirmed"),
    ]
    assert outbox(google_fake) == [
        ("invitation", BOOKEE, "tentative"),
        ("update", BOOKEE, "confirmed"),
    ]


@pytest.mark.parametrize(
    ("action", "status"),
    [(services.booking_deny, BookingStatus.DECLINED), (services.booking_cancel, "cancelled")],
)
def test_deny_or_cancel_deletes_event_with_updates_sent_when_flag_on(
    flag_on: None,
    schedule: Schedule,
    google_fake: FakeGoogleCalendar,
    commit: Commit,
    action: Callable[..., Any],
    status: str,
) -> None:
    booking = request_booking(commit, schedule)
    with commit():
        action(booking_id=booking.pk, source=TransitionSource.EMAIL_LINK)
    booking.refresh_from_db()
    assert (booking.status, booking.publish_state) == (status, PublishState.PUBLISHED)
    assert transitions(booking)[-1] == ("requested", status, "email_link")
    assert event_calls(google_fake)[-1] == ("events.delete", "all", None)
    event = google_fake.event(schedule.calendar.remote_id, booking.google_event_id or "")
    assert event is not None and event["status"] == "cancelled"
    assert outbox(google_fake)[-1] == ("cancellation", BOOKEE, "cancelled")


def test_cancel_of_booked_booking_deletes_event_when_flag_on(
    flag_on: None, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    booking = request_booking(commit, schedule)
    with commit():
        services.booking_confirm(booking_id=booking.pk, source=TransitionSource.API)
    with commit():
        services.booking_cancel(booking_id=booking.pk, source=TransitionSource.API)
    booking.refresh_from_db()
    assert booking.status == BookingStatus.CANCELLED
    assert [c for c in event_calls(google_fake)] == [
        ("events.insert", "all", "tentative"),
        ("events.patch", "all", "confirmed"),
        ("events.delete", "all", None),
    ]


def test_auto_confirm_inserts_confirmed_event_and_notifies_subscriber_when_schedule_says_so(
    flag_on: None, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    Schedule.objects.filter(pk=schedule.pk).update(auto_confirm=True)
    booking = request_booking(commit, schedule)
    assert booking.status == BookingStatus.BOOKED
    assert transitions(booking) == [("", "requested", "api"), ("requested", "booked", "api")]
    assert event_calls(google_fake) == [("events.insert", "all", "confirmed")]
    assert outbox(google_fake) == [("invitation", BOOKEE, "confirmed")]
    assert len(mail.outbox) == 1
    assert "action=confirm" not in mail.outbox[0].body
    assert "confirmed automatically" in mail.outbox[0].body


def test_transition_applied_twice_calls_google_once_when_repeated(
    flag_on: None, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    booking = request_booking(commit, schedule)
    with commit():
        first = services.booking_confirm(booking_id=booking.pk, source=TransitionSource.API)
    with commit():
        second = services.booking_confirm(booking_id=booking.pk, source=TransitionSource.EMAIL_LINK)
    with commit():
        services.booking_deny(booking_id=booking.pk, source=TransitionSource.API)
    with commit():
        again = services.booking_deny(booking_id=booking.pk, source=TransitionSource.API)
    assert (first.changed, second.changed, again.changed) == (True, False, False)
    assert [c[0] for c in event_calls(google_fake)] == [
        "events.insert",
        "events.patch",
        "events.delete",
    ]
    booking.refresh_from_db()
    assert len(transitions(booking)) == 3


def test_repeated_sync_task_calls_nothing_when_calendar_already_reflects_status(
    flag_on: None, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    from calendars.tasks import booking_publish_task

    booking = request_booking(commit, schedule)
    before = len(google_fake.requests)
    assert booking_publish_task.delay(booking.pk).get() == "unchanged"
    assert len(google_fake.requests) == before


# --- Changes coming from Google (what the push sync applies through the same services) ------------


def test_bookee_declining_in_google_declines_and_deletes_event_when_pushed(
    flag_on: None, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    booking = request_booking(commit, schedule)
    google_fake.attendee_respond(
        schedule.calendar.remote_id,
        booking.google_event_id or "",
        email=BOOKEE,
        response_status="declined",
    )
    with commit():
        recorded = services.booking_attendee_answer_record(
            booking_id=booking.pk,
            attendee_email=BOOKEE,
            partstat="DECLINED",
            source=TransitionSource.GOOGLE_PUSH,
        )
    booking.refresh_from_db()
    assert recorded and booking.status == BookingStatus.DECLINED
    assert transitions(booking)[-1] == ("requested", "declined", "google_push")
    assert event_calls(google_fake)[-1] == ("events.delete", "all", None)
    assert booking.publish_state == PublishState.PUBLISHED


def test_bookee_accepting_in_google_changes_nothing_when_pushed(
    flag_on: None, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    booking = request_booking(commit, schedule)
    calls = len(google_fake.requests)
    with commit():
        services.booking_attendee_answer_record(
            booking_id=booking.pk,
            attendee_email=BOOKEE,
            partstat="ACCEPTED",
            source=TransitionSource.GOOGLE_PUSH,
        )
    booking.refresh_from_db()
    assert booking.status == BookingStatus.REQUESTED
    assert booking.attendee_partstat == "ACCEPTED"
    assert len(google_fake.requests) == calls


def test_event_deleted_in_google_cancels_booking_without_new_email_when_pushed(
    flag_on: None, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    booking = request_booking(commit, schedule)
    google_fake.event_delete_as_owner(schedule.calendar.remote_id, booking.google_event_id or "")
    with commit():
        services.booking_cancel(booking_id=booking.pk, source=TransitionSource.GOOGLE_PUSH)
    booking.refresh_from_db()
    assert (booking.status, booking.publish_state) == (
        BookingStatus.CANCELLED,
        PublishState.PUBLISHED,
    )
    assert google_fake.requests_for("events.delete")[-1].status == 410
    assert outbox(google_fake) == [("invitation", BOOKEE, "tentative")]


# --- GOOGLE_INVITE_ENABLED off: import, and Convoke invites ---------------------------------------


def test_request_imports_event_and_sends_our_invitation_when_flag_off(
    flag_off: None, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    booking = request_booking(commit, schedule)
    assert event_calls(google_fake) == [("events.import", None, "tentative")]
    imported = google_fake.requests_for("events.import")[0]
    assert imported.body["iCalUID"] == booking.ical_uid
    assert google_fake.outbox == []
    assert (booking.publish_state, booking.provider_status) == (PublishState.PUBLISHED, "requested")
    recipients = sorted(tuple(m.to) for m in mail.outbox)
    assert recipients == sorted([(schedule.owner.email,), (BOOKEE,)])
    invitation = next(m for m in mail.outbox if m.to == [BOOKEE])
    ics = calendar_part(invitation)
    assert "METHOD:REQUEST" in ics and "STATUS:TENTATIVE" in ics and "SEQUENCE:0" in ics
    assert f"UID:{booking.ical_uid}" in ics


def test_our_invitation_leaves_from_the_subscribers_mailbox_when_the_calendar_is_a_mailbox(
    flag_off: None,
    schedule: Schedule,
    google_fake: FakeGoogleCalendar,
    commit: Commit,
    messages_api: FakeMessagesApi,
) -> None:
    # Calendar.is_mailbox: invitations from this calendar go through the Messages API.
    Calendar.objects.filter(pk=schedule.calendar_id).update(is_mailbox=True)
    messages_api.add_mailbox(schedule.owner.email)

    booking = request_booking(commit, schedule)

    invitation = Delivery.objects.get(booking=booking, kind=DeliveryKind.ITIP)
    assert (invitation.transport, invitation.status) == ("messages", "sent")
    [submission] = messages_api.submissions
    assert submission.rcpt_to == (BOOKEE,)
    assert submission.message["From"].addresses[0].addr_spec == schedule.owner.email
    [ics] = [
        part.get_content()
        for part in submission.message.walk()
        if part.get_content_type() == "text/calendar"
    ]
    assert "METHOD:REQUEST" in ics
    # The subscriber's own notice comes from Convoke's address, through the mailer.
    assert [m.to for m in mail.outbox] == [[schedule.owner.email]]


def test_confirm_and_cancel_send_our_update_and_cancellation_when_flag_off(
    flag_off: None, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    booking = request_booking(commit, schedule)
    mail.outbox.clear()
    with commit():
        services.booking_confirm(booking_id=booking.pk, source=TransitionSource.API)
    with commit():
        services.booking_cancel(booking_id=booking.pk, source=TransitionSource.API)
    assert event_calls(google_fake) == [
        ("events.import", None, "tentative"),
        ("events.patch", "none", "confirmed"),
        ("events.delete", "none", None),
    ]
    assert google_fake.outbox == []
    assert [m.to for m in mail.outbox] == [[BOOKEE], [BOOKEE]]
    update, cancel = (calendar_part(m) for m in mail.outbox)
    assert "METHOD:REQUEST" in update and "STATUS:CONFIRMED" in update and "SEQUENCE:1" in update
    assert "METHOD:CANCEL" in cancel and "STATUS:CANCELLED" in cancel and "SEQUENCE:2" in cancel
    booking.refresh_from_db()
    assert (booking.status, booking.sequence) == (BookingStatus.CANCELLED, 2)


def test_deny_twice_sends_one_cancellation_when_flag_off(
    flag_off: None, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    booking = request_booking(commit, schedule)
    mail.outbox.clear()
    for _ in range(2):
        with commit():
            services.booking_deny(booking_id=booking.pk, source=TransitionSource.API)
    assert [c[0] for c in event_calls(google_fake)] == ["events.import", "events.delete"]
    assert len(mail.outbox) == 1 and "METHOD:CANCEL" in calendar_part(mail.outbox[0])


# --- Faults ---------------------------------------------------------------------------------------


def test_lost_insert_answer_is_retried_into_409_and_one_event_when_google_times_out(
    flag_on: None,
    schedule: Schedule,
    google_fake: FakeGoogleCalendar,
    commit: Commit,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.GOOGLE_API_TIMEOUT_SECONDS = 0.4
    google_fake.timeout_after_commit(operation="events.insert", seconds=1.2)
    booking = request_booking(commit, schedule)
    inserts = google_fake.requests_for("events.insert")
    assert len(inserts) == 2 and inserts[1].status == 409
    assert [r.operation for r in google_fake.requests_for("events.get")] == ["events.get"]
    assert len(google_fake.events(schedule.calendar.remote_id)) == 1
    assert outbox(google_fake) == [("invitation", BOOKEE, "tentative")]
    assert (booking.publish_state, booking.provider_status) == (PublishState.PUBLISHED, "requested")


def test_rate_limit_and_server_error_are_retried_until_success_when_google_recovers(
    flag_on: None, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    google_fake.fault_add(operation="events.insert", status=429)
    google_fake.fault_add(operation="events.insert", status=503)
    booking = request_booking(commit, schedule)
    assert [r.status for r in google_fake.requests_for("events.insert")] == [429, 503, 200]
    assert len(google_fake.events(schedule.calendar.remote_id)) == 1
    assert booking.publish_state == PublishState.PUBLISHED


def test_expired_token_is_refreshed_once_and_stored_when_google_answers_401(
    flag_on: None,
    schedule: Schedule,
    google_fake: FakeGoogleCalendar,
    google_setup: GoogleSetup,
    commit: Commit,
) -> None:
    google_fake.access_tokens_expire(subject=google_setup.subject)
    booking = request_booking(commit, schedule)
    assert google_fake.refresh_count(subject=google_setup.subject) == 1
    assert booking.publish_state == PublishState.PUBLISHED
    stored = GoogleAccount.objects.get(pk=google_setup.account.pk).credentials
    assert stored["token"] != google_setup.access_token


def test_revoked_grant_disconnects_and_emails_subscriber_once_when_requests_continue(
    flag_on: None,
    schedule: Schedule,
    google_fake: FakeGoogleCalendar,
    google_setup: GoogleSetup,
    commit: Commit,
) -> None:
    google_fake.grant_revoke(subject=google_setup.subject)
    for _ in range(2):
        with pytest.raises(services.ScheduleUnavailable), commit():
            services.booking_request(
                schedule_id=schedule.pk,
                attendee_name="Bob",
                attendee_email=BOOKEE,
                start=slot(),
            )
    account = GoogleAccount.objects.get(pk=google_setup.account.pk)
    assert account.revoked and account.credentials is None
    assert not Calendar.objects.get(pk=schedule.calendar_id).connected
    assert not Booking.objects.exists()
    assert [m.to for m in mail.outbox] == [[google_setup.email]]
    assert "Reconnect" in mail.outbox[0].subject
    assert "/google/connect/" in mail.outbox[0].body


def test_revoked_grant_marks_sync_failed_when_decision_reaches_google(
    flag_on: None,
    schedule: Schedule,
    google_fake: FakeGoogleCalendar,
    google_setup: GoogleSetup,
    commit: Commit,
) -> None:
    booking = request_booking(commit, schedule)
    mail.outbox.clear()
    google_fake.grant_revoke(subject=google_setup.subject)
    with commit():
        services.booking_confirm(booking_id=booking.pk, source=TransitionSource.API)
    booking.refresh_from_db()
    assert booking.status == BookingStatus.BOOKED
    assert booking.publish_state == PublishState.FAILED
    assert "revoked" in booking.publish_error
    assert GoogleAccount.objects.get(pk=google_setup.account.pk).revoked
    assert [m.to for m in mail.outbox] == [[google_setup.email]]


def test_persistent_outage_ends_in_failed_sync_state_when_retries_run_out(
    flag_on: None,
    schedule: Schedule,
    google_fake: FakeGoogleCalendar,
    commit: Commit,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.GOOGLE_API_MAX_RETRIES = 0
    settings.BOOKING_PUBLISH_MAX_RETRIES = 4  # more than Celery's own default of 3
    google_fake.fault_add(operation="events.insert", status=503, times=100)
    booking = request_booking(commit, schedule)
    assert len(google_fake.requests_for("events.insert")) == 5
    assert booking.publish_state == PublishState.FAILED
    assert booking.publish_error.startswith("gave up: backendError")
    assert booking.status == BookingStatus.REQUESTED


# --- Free slots -----------------------------------------------------------------------------------


def test_overlapping_request_is_refused_when_slot_is_taken(
    flag_on: None, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    start = slot()
    request_booking(commit, schedule, start=start)
    with pytest.raises(services.SlotUnavailable) as caught:
        request_booking(commit, schedule, start=start + dt.timedelta(minutes=15))
    assert caught.value.reason == "overlap"
    assert Booking.objects.count() == 1
    assert len(google_fake.requests_for("events.insert")) == 1


def test_declined_booking_frees_its_slot_when_requested_again(
    flag_on: None, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    start = slot()
    first = request_booking(commit, schedule, start=start)
    with commit():
        services.booking_deny(booking_id=first.pk, source=TransitionSource.API)
    second = request_booking(commit, schedule, start=start)
    assert second.status == BookingStatus.REQUESTED and second.pk != first.pk


def test_busy_time_in_google_refuses_the_slot_when_freebusy_overlaps(
    flag_on: None, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    start = slot()
    google_fake.busy_add(
        schedule.calendar.remote_id, start + dt.timedelta(minutes=20), start + dt.timedelta(hours=2)
    )
    with pytest.raises(services.SlotUnavailable) as caught:
        request_booking(commit, schedule, start=start)
    assert caught.value.reason == "busy"
    freebusy = google_fake.requests_for("freebusy.query")[0].body
    assert freebusy["items"] == [{"id": schedule.calendar.remote_id}]
    assert not Booking.objects.exists()


def test_google_outage_makes_schedule_unavailable_when_freebusy_fails(
    flag_on: None,
    schedule: Schedule,
    google_fake: FakeGoogleCalendar,
    commit: Commit,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.GOOGLE_API_MAX_RETRIES = 1
    google_fake.fault_add(operation="freebusy.query", status=503, times=5)
    with pytest.raises(services.ScheduleUnavailable) as caught:
        request_booking(commit, schedule)
    assert caught.value.reason == "google_unavailable" and caught.value.retry_after_seconds
    assert not Booking.objects.exists()


def test_operator_retry_syncs_failed_booking_when_google_is_back(
    flag_on: None,
    schedule: Schedule,
    google_fake: FakeGoogleCalendar,
    commit: Commit,
    admin_client: Any,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.GOOGLE_API_MAX_RETRIES = 0
    settings.BOOKING_PUBLISH_MAX_RETRIES = 0
    google_fake.fault_add(operation="events.insert", status=503)
    booking = request_booking(commit, schedule)
    assert booking.publish_state == PublishState.FAILED
    changelist = admin_client.get("/admin/calendars/booking/")
    assert "gave up: backendError" in changelist.content.decode()
    with commit():
        response = admin_client.post(
            "/admin/calendars/booking/",
            {"action": "publish_retry", "_selected_action": [booking.pk]},
        )
    assert response.status_code == 302
    booking.refresh_from_db()
    assert (booking.publish_state, booking.publish_error) == (PublishState.PUBLISHED, "")
    assert [r.status for r in google_fake.requests_for("events.insert")] == [503, 200]
