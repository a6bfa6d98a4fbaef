"""The bookings console: list, timeline, and the actions that go through the booking service.

Actions run against the fake Google server: each one must record a transition with source
``admin`` and make Google reflect the new status, exactly as the API or an email link would.
"""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from calendars import services
from calendars.models import (
    Booking,
    BookingStatus,
    BookingTransition,
    PublishState,
    Schedule,
    TransitionSource,
    User,
)
from gcal_push.models import GoogleCalendarSyncState
from invitations.models import DeliveryStatus
from tests.admin.support import delivery_create, message_create
from tests.factories import BookingFactory
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fixtures import Commit

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:calendars_booking_changelist"
BOOKEE = "bookee@example.net"


@pytest.fixture(autouse=True)
def _flag_on(settings: Any) -> None:
    settings.GOOGLE_INVITE_ENABLED = True


def _request(commit: Commit, schedule: Schedule) -> Booking:
    start = (timezone.now() + dt.timedelta(days=3)).replace(
        hour=9, minute=0, second=0, microsecond=0
    )
    with commit():
        booking = services.booking_request(
            schedule_id=schedule.pk,
            attendee_name="Bob Bookee",
            attendee_email=BOOKEE,
            start=start,
        )
    booking.refresh_from_db()
    return booking


def _act(client: Client, commit: Commit, action: str, *bookings: Booking, **extra: str) -> Any:
    with commit():
        return client.post(
            reverse(CHANGELIST),
            {"action": action, "_selected_action": [b.pk for b in bookings], **extra},
            follow=True,
        )


def _transitions(booking: Booking) -> list[tuple[str, str, str]]:
    return [(t.from_status, t.to_status, t.source) for t in booking.transitions.all()]


def _event_calls(fake: FakeGoogleCalendar) -> list[tuple[str, str | None, str | None]]:
    return [call for call in fake.api_calls() if call[0].startswith("events.")]


# --- Actions ------------------------------------------------------------------------------------


def test_confirm_action_books_and_patches_google_when_an_operator_confirms(
    operator_client: Client,
    operator: User,
    google_schedule: Schedule,
    google_fake: FakeGoogleCalendar,
    commit: Commit,
) -> None:
    booking = _request(commit, google_schedule)

    response = _act(operator_client, commit, "confirm", booking)

    assert response.status_code == 200
    assert f"Confirmed: #{booking.pk}." in response.content.decode()
    booking.refresh_from_db()
    assert (booking.status, booking.publish_state) == (BookingStatus.BOOKED, PublishState.PUBLISHED)
    assert _transitions(booking) == [("", "requested", "api"), ("requested", "booked", "admin")]
    assert booking.transitions.last().detail == {"operator": operator.pk}  # type: ignore[union-attr]
    # The event is read first (a change made in Google wins), then confirmed with If-Match.
    assert _event_calls(google_fake) == [
        ("events.insert", "all", "tentative"),
        ("events.get", None, None),
        ("events.patch", "all", "confirmed"),
    ]
    [patch] = google_fake.requests_for("events.patch")
    assert patch.headers.get("if-match") and patch.status == 200


@pytest.mark.parametrize(("action", "status"), [("deny", "declined"), ("cancel", "cancelled")])
def test_deny_and_cancel_actions_delete_the_google_event_when_an_operator_decides(
    operator_client: Client,
    google_schedule: Schedule,
    google_fake: FakeGoogleCalendar,
    commit: Commit,
    action: str,
    status: str,
) -> None:
    booking = _request(commit, google_schedule)

    _act(operator_client, commit, action, booking)

    booking.refresh_from_db()
    assert (booking.status, booking.publish_state) == (status, PublishState.PUBLISHED)
    assert _transitions(booking)[-1] == ("requested", status, "admin")
    assert _event_calls(google_fake)[-1] == ("events.delete", "all", None)


def test_republish_action_writes_a_failed_booking_to_google_when_google_is_back(
    operator_client: Client,
    google_schedule: Schedule,
    google_fake: FakeGoogleCalendar,
    commit: Commit,
    settings: Any,
) -> None:
    settings.GOOGLE_API_MAX_RETRIES = 0
    settings.BOOKING_PUBLISH_MAX_RETRIES = 0
    google_fake.fault_add(operation="events.insert", status=503)
    booking = _request(commit, google_schedule)
    assert booking.publish_state == PublishState.FAILED

    response = _act(operator_client, commit, "republish", booking)

    assert f"Publish scheduled: #{booking.pk}." in response.content.decode()
    booking.refresh_from_db()
    assert (booking.publish_state, booking.publish_error) == (PublishState.PUBLISHED, "")
    last = booking.transitions.last()
    assert last is not None
    assert (last.from_status, last.to_status, last.source) == ("requested", "requested", "admin")
    assert last.detail["action"] == "republish" and last.detail["publish_state"] == "failed"
    assert [r.status for r in google_fake.requests_for("events.insert")] == [503, 200]


def test_action_reports_and_records_nothing_when_the_move_is_not_allowed(
    operator_client: Client, commit: Commit
) -> None:
    booking = BookingFactory(status=BookingStatus.CANCELLED)

    response = _act(operator_client, commit, "confirm", booking)

    assert f"Not possible: #{booking.pk} is cancelled." in response.content.decode()
    assert Booking.objects.get(pk=booking.pk).status == BookingStatus.CANCELLED
    assert not BookingTransition.objects.filter(booking=booking).exists()


def test_action_records_one_transition_when_applied_twice(
    operator_client: Client, commit: Commit, django_capture_on_commit_callbacks: Any
) -> None:
    booking = BookingFactory(status=BookingStatus.REQUESTED)
    with django_capture_on_commit_callbacks(execute=False) as first:
        operator_client.post(
            reverse(CHANGELIST), {"action": "deny", "_selected_action": [booking.pk]}
        )
    with django_capture_on_commit_callbacks(execute=False) as second:
        response = operator_client.post(
            reverse(CHANGELIST), {"action": "deny", "_selected_action": [booking.pk]}, follow=True
        )

    assert "Already so, nothing changed" in response.content.decode()
    assert _transitions(booking) == [("requested", "declined", "admin")]
    # One publish scheduled by the first, none by the second.
    assert (len(first), len(second)) == (1, 0)


def test_action_from_the_booking_page_returns_to_it_when_done(
    operator_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    booking = BookingFactory(status=BookingStatus.REQUESTED)
    with django_capture_on_commit_callbacks(execute=False):
        response = operator_client.post(
            reverse(CHANGELIST),
            {"action": "cancel", "_selected_action": [booking.pk], "_from": "change"},
        )
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:calendars_booking_change", args=[booking.pk])
    assert _transitions(booking) == [("requested", "cancelled", "admin")]


def test_several_bookings_are_handled_one_by_one_when_selected_together(
    operator_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    requested = BookingFactory(status=BookingStatus.REQUESTED)
    booked = BookingFactory(status=BookingStatus.BOOKED)
    declined = BookingFactory(status=BookingStatus.DECLINED)
    with django_capture_on_commit_callbacks(execute=False):
        response = operator_client.post(
            reverse(CHANGELIST),
            {"action": "confirm", "_selected_action": [requested.pk, booked.pk, declined.pk]},
            follow=True,
        )
    text = response.content.decode()
    assert f"Confirmed: #{requested.pk}." in text
    assert f"Already so, nothing changed: #{booked.pk}." in text
    assert f"#{declined.pk} is declined" in text


def test_booking_pages_cannot_change_status_when_posted_as_a_form(
    operator_client: Client,
) -> None:
    booking = BookingFactory(status=BookingStatus.REQUESTED)
    url = reverse("admin:calendars_booking_change", args=[booking.pk])
    operator_client.post(url, {"status": "booked", "title": "changed"})
    booking.refresh_from_db()
    assert (booking.status, booking.title) == (BookingStatus.REQUESTED, "Intro call")
    assert not BookingTransition.objects.filter(booking=booking).exists()


# --- List -----------------------------------------------------------------------------------------


def test_list_shows_badges_masked_attendee_and_operator_time_when_rendered(
    operator_client: Client,
) -> None:
    start = dt.datetime(2030, 1, 15, 14, 0, tzinfo=dt.UTC)
    BookingFactory(
        status=BookingStatus.BOOKED,
        publish_state=PublishState.FAILED,
        publish_error="gave up: backendError",
        attendee_email="bookee.person@example.net",
        start=start,
        end=start + dt.timedelta(minutes=30),
    )
    response = operator_client.get(reverse(CHANGELIST))
    text = response.content.decode()
    assert '<span class="cv-badge cv-ok" title="Booked">Booked</span>' in text
    assert 'class="cv-badge cv-bad" title="gave up: backendError">Failed</span>' in text
    assert "b***@example.net" in text
    assert "bookee.person@example.net" not in text
    # 14:00 UTC is 09:00 in New York (EST) for the operator.
    assert "2030-01-15 09:00 EST" in text
    assert "CalDAV" in text


def test_date_hierarchy_uses_the_operator_zone_when_drilling_down(
    operator_client: Client,
) -> None:
    # 03:00 UTC on the 16th is still the 15th in New York.
    start = dt.datetime(2030, 1, 16, 3, 0, tzinfo=dt.UTC)
    booking = BookingFactory(start=start, end=start + dt.timedelta(minutes=30), title="Late one")
    response = operator_client.get(
        reverse(CHANGELIST), {"start__year": 2030, "start__month": 1, "start__day": 15}
    )
    assert response.status_code == 200
    assert f"/admin/calendars/booking/{booking.pk}/change/" in response.content.decode()


def test_filters_and_search_narrow_the_list_when_used(operator_client: Client) -> None:
    failed = BookingFactory(publish_state=PublishState.FAILED, attendee_email="findme@example.net")
    synced = BookingFactory(publish_state=PublishState.PUBLISHED)
    by_filter = operator_client.get(reverse(CHANGELIST), {"publish_state__exact": "failed"})
    by_search = operator_client.get(reverse(CHANGELIST), {"q": "findme@example.net"})
    for response in (by_filter, by_search):
        text = response.content.decode()
        assert f"/booking/{failed.pk}/change/" in text
        assert f"/booking/{synced.pk}/change/" not in text


# --- Timeline -------------------------------------------------------------------------------------


class _Rows(HTMLParser):
    """The cells of the timeline table, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_timeline = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("class", "cv-timeline") in attrs:
            self._in_timeline = True
        elif self._in_timeline and tag == "tr":
            self.rows.append([])
        elif self._in_timeline and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_timeline = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_timeline_merges_transitions_messages_deliveries_and_google_sync_when_opened(
    operator_client: Client, google_setup: Any
) -> None:
    t0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    booking = BookingFactory(calendar=google_setup.calendar, status=BookingStatus.BOOKED)
    BookingTransition.objects.create(
        booking=booking, from_status="", to_status="requested", source="api", at=t0
    )
    BookingTransition.objects.create(
        booking=booking,
        from_status="requested",
        to_status="booked",
        source=TransitionSource.EMAIL_LINK,
        at=t0 + dt.timedelta(minutes=5),
        detail={"note": "<script>alert(1)</script>"},
    )
    message = message_create(uid=booking.ical_uid, method="REPLY")
    message.received_at = t0 + dt.timedelta(minutes=10)
    message.save(update_fields=["received_at"])
    delivery = delivery_create(
        message=message,
        status=DeliveryStatus.DEAD,
        attempts=10,
        last_error="SMTP server answered 550",
    )
    message_create(uid="another-event@dav.example.org")  # not about this booking
    GoogleCalendarSyncState.objects.create(
        calendar=google_setup.calendar,
        last_synced_at=t0 + dt.timedelta(minutes=20),
        last_failure_at=t0 + dt.timedelta(minutes=30),
        last_error="rateLimitExceeded",
        failure_count=2,
    )

    response = operator_client.get(reverse("admin:calendars_booking_change", args=[booking.pk]))

    assert response.status_code == 200
    text = response.content.decode()
    parser = _Rows()
    parser.feed(text)
    rows = [row for row in parser.rows if row]
    kinds = [row[1] for row in rows]
    assert kinds[:3] == ["transition", "transition", "message"]
    assert set(kinds) == {"transition", "message", "delivery", "google"}
    # Times are the operator's (New York, EST): 12:00 UTC is 07:00.
    assert rows[0][0] == "2026-03-01 07:00:00 EST"
    assert rows[0][2] == "∅ → requested"
    assert rows[1][2:4] == ["requested → booked", "Email link"]
    assert rows[2][2].startswith("REPLY received")
    assert rows[2][4].startswith("a***@example.org → b***@example.net")
    failed = next(row for row in rows if row[2] == "last failed sync")
    assert "rateLimitExceeded" in failed[4]
    assert any(row[1] == "delivery" and "SMTP server answered 550" in row[4] for row in rows)
    assert reverse("admin:invitations_delivery_change", args=[delivery.pk]) in text
    # Stored text is escaped, addresses are masked.
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "another-event" not in text
    for name in ("confirm", "deny", "cancel", "republish"):
        assert f'id="cv-action-{name}"' in text


def test_timeline_page_query_count_is_bounded_when_the_booking_has_much_history(
    operator_client: Client, django_assert_max_num_queries: Any
) -> None:
    booking = BookingFactory()
    delivery_create(message=message_create(uid=booking.ical_uid))
    url = reverse("admin:calendars_booking_change", args=[booking.pk])
    operator_client.get(url)  # warms the content-type cache
    with CaptureQueriesContext(connection) as few:
        operator_client.get(url)
    for index in range(30):
        BookingTransition.objects.create(
            booking=booking,
            from_status="requested",
            to_status="requested",
            source="api",
            detail={"n": index},
        )
        delivery_create(message=message_create(uid=booking.ical_uid))
    with django_assert_max_num_queries(20):
        response = operator_client.get(url)
    assert response.status_code == 200
    with CaptureQueriesContext(connection) as many:
        operator_client.get(url)
    print(f"booking change page: {len(few)} queries, {len(many)} with 30 more rows of each kind")
    assert len(many) == len(few)
