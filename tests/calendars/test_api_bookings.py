"""The REST API: the public booking request, the subscriber's bookings, calendars, schedules."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import yaml
from django.test import Client
from django.utils import timezone
from drf_spectacular.validation import validate_schema
from rest_framework.authtoken.models import Token

from calendars.models import (
    Booking,
    BookingStatus,
    Calendar,
    GoogleAccount,
    Schedule,
)
from tests.calendars.test_bookings_google import slot
from tests.factories import (
    BookingFactory,
    CalendarFactory,
    GoogleCalendarFactory,
    ScheduleFactory,
)
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fixtures import Commit, GoogleSetup, google_setup_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(google_fake: FakeGoogleCalendar, settings) -> GoogleSetup:  # type: ignore[no-untyped-def]
    settings.GOOGLE_INVITE_ENABLED = True
    return google_setup_create(google_fake)


@pytest.fixture
def schedule(setup: GoogleSetup) -> Schedule:
    return ScheduleFactory(owner=setup.user, calendar=setup.calendar, slug="meet-ada")


@pytest.fixture
def owner_client(setup: GoogleSetup) -> Client:
    client = Client()
    client.force_login(setup.user)
    return client


def post_booking(client: Client, slug: str, body: Any, **extra: Any) -> Any:
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(
        f"/api/v1.0/schedules/{slug}/bookings/",
        data=data,
        content_type="application/json",
        **extra,
    )


def valid_body(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "Bob Bookee",
        "email": "bookee@example.net",
        "start": slot().isoformat(),
        "time_zone": "Europe/Berlin",
        "language": "de",
        "note": "Looking forward",
        **overrides,
    }


# --- Public booking request -----------------------------------------------------------------------


def test_public_request_creates_booking_and_reveals_nothing_more_when_valid(
    schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    with commit():
        response = post_booking(Client(enforce_csrf_checks=True), schedule.slug, valid_body())
    assert response.status_code == 201, response.content
    assert set(response.json()) == {"status", "start", "end", "title"}
    assert response.json()["status"] == "requested"
    booking = Booking.objects.get()
    assert (booking.attendee_language, booking.attendee_time_zone) == ("de", "Europe/Berlin")
    assert booking.end - booking.start == dt.timedelta(minutes=30)
    assert booking.description == "Looking forward"
    assert [c[0] for c in google_fake.api_calls()] == ["freebusy.query", "events.insert"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"end": (slot() - dt.timedelta(minutes=5)).isoformat()}, "end"),
        ({"start": (timezone.now() - dt.timedelta(days=1)).isoformat()}, "start"),
        ({"email": "not-an-address"}, "email"),
        ({"email": "a@b@example.net"}, "email"),
        ({"start": "2031-03-04T09:00:00"}, "start"),  # no offset
        ({"start": "tomorrow at nine"}, "start"),
        ({"start": "9" * 500}, "start"),
        ({"end": (slot() + dt.timedelta(hours=3)).isoformat()}, "end"),  # longer than a slot
        ({"start": (timezone.now() + dt.timedelta(days=900)).isoformat()}, "start"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "Bob\r\nBcc: victim@example.com"}, "name"),
        ({"note": "y" * 2001}, "note"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"language": "xx"}, "language"),
    ],
)
def test_invalid_request_gets_400_naming_the_field_when_input_is_bad(
    schedule: Schedule, google_fake: FakeGoogleCalendar, overrides: dict[str, Any], field: str
) -> None:
    response = post_booking(Client(), schedule.slug, valid_body(**overrides))
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Booking.objects.exists()
    assert google_fake.requests_for("events.insert") == []


@pytest.mark.parametrize("body", ["{not json", "[]", '"a string"', b"\xff\xfe\x00"])
def test_malformed_body_gets_400_when_not_a_json_object(schedule: Schedule, body: Any) -> None:
    response = post_booking(Client(), schedule.slug, body)
    assert response.status_code == 400
    assert not Booking.objects.exists()


def test_oversized_body_is_refused_when_beyond_the_upload_limit(schedule: Schedule) -> None:
    response = post_booking(Client(), schedule.slug, {"name": "x" * 3_000_000})
    assert response.status_code in (400, 413)
    assert not Booking.objects.exists()


def test_missing_fields_get_400_when_body_is_empty(schedule: Schedule) -> None:
    response = post_booking(Client(), schedule.slug, {})
    assert response.status_code == 400
    assert {"name", "email", "start"} <= set(response.json())


def test_unknown_or_inactive_schedule_gets_404_when_requested(schedule: Schedule) -> None:
    assert post_booking(Client(), "no-such-page", valid_body()).status_code == 404
    Schedule.objects.filter(pk=schedule.pk).update(active=False)
    response = post_booking(Client(), schedule.slug, valid_body())
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_taken_slot_gets_409_with_clear_message_when_booked_twice(
    schedule: Schedule, commit: Commit
) -> None:
    body = valid_body()
    with commit():
        assert post_booking(Client(), schedule.slug, body).status_code == 201
    response = post_booking(Client(), schedule.slug, {**body, "email": "other@example.net"})
    assert response.status_code == 409
    assert response.json() == {
        "detail": "This slot is no longer available. Please choose another time.",
        "code": "slot_unavailable",
    }


def test_disconnected_calendar_gets_503_when_schedule_cannot_book(schedule: Schedule) -> None:
    Calendar.objects.filter(pk=schedule.calendar_id).update(connected=False)
    response = post_booking(Client(), schedule.slug, valid_body())
    assert response.status_code == 503 and response.json()["code"] == "schedule_unavailable"


def test_requests_are_throttled_per_client_when_rate_is_exceeded(
    schedule: Schedule,
    settings,
    commit: Commit,  # type: ignore[no-untyped-def]
) -> None:
    settings.BOOKING_REQUEST_THROTTLE_RATE = "2/minute"
    statuses = []
    for hours in range(3):
        with commit():
            body = valid_body(start=(slot() + dt.timedelta(hours=hours)).isoformat())
            statuses.append(post_booking(Client(), schedule.slug, body).status_code)
    assert statuses == [201, 201, 429]
    forged = post_booking(Client(), schedule.slug, valid_body(), HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert forged.status_code == 429
    other = post_booking(Client(), schedule.slug, valid_body(), REMOTE_ADDR="10.0.0.9")
    assert other.status_code != 429


# --- The subscriber's bookings --------------------------------------------------------------------


def test_bookings_list_shows_only_own_bookings_when_filtered(
    setup: GoogleSetup, schedule: Schedule, owner_client: Client
) -> None:
    mine = BookingFactory(calendar=setup.calendar, schedule=schedule, start=slot(days=2))
    BookingFactory(
        calendar=setup.calendar, schedule=schedule, start=slot(days=4), status="declined"
    )
    BookingFactory()  # another subscriber's
    response = owner_client.get("/api/v1.0/bookings/", {"status": "requested"})
    assert response.status_code == 200
    assert [b["id"] for b in response.json()["results"]] == [mine.pk]
    everything = owner_client.get("/api/v1.0/bookings/").json()
    assert everything["count"] == 2
    later = owner_client.get(
        "/api/v1.0/bookings/", {"start_after": slot(days=3).isoformat(), "schedule": schedule.slug}
    ).json()
    assert [b["status"] for b in later["results"]] == ["declined"]


def test_bookings_list_costs_few_queries_when_many_bookings_exist(
    setup: GoogleSetup, schedule: Schedule, owner_client: Client, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    for day in range(30):
        BookingFactory(calendar=setup.calendar, schedule=schedule, start=slot(days=day + 1))
    with django_assert_max_num_queries(5):
        response = owner_client.get("/api/v1.0/bookings/", {"limit": 100})
    assert len(response.json()["results"]) == 30


def test_bad_filter_gets_400_when_status_is_unknown(owner_client: Client) -> None:
    response = owner_client.get("/api/v1.0/bookings/", {"status": "maybe"})
    assert response.status_code == 400 and "status" in response.json()


def test_other_subscribers_booking_is_404_when_read_or_acted_on(
    owner_client: Client, google_fake: FakeGoogleCalendar
) -> None:
    theirs = BookingFactory()
    assert owner_client.get(f"/api/v1.0/bookings/{theirs.pk}/").status_code == 404
    for action in ("confirm", "deny", "cancel"):
        response = owner_client.post(f"/api/v1.0/bookings/{theirs.pk}/{action}/")
        assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == BookingStatus.REQUESTED and not theirs.transitions.exists()


def test_anonymous_gets_403_when_listing_bookings() -> None:
    assert Client().get("/api/v1.0/bookings/").status_code in (401, 403)


def test_confirm_action_books_and_repeats_harmlessly_when_called_twice(
    setup: GoogleSetup, schedule: Schedule, google_fake: FakeGoogleCalendar, commit: Commit
) -> None:
    with commit():
        post_booking(Client(), schedule.slug, valid_body())
    booking = Booking.objects.get()
    token = Token.objects.create(user=setup.user)
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}")
    for _ in range(2):
        with commit():
            response = client.post(f"/api/v1.0/bookings/{booking.pk}/confirm/")
        assert response.status_code == 200
        assert response.json()["status"] == "booked"
    detail = client.get(f"/api/v1.0/bookings/{booking.pk}/").json()
    assert [(t["from_status"], t["to_status"], t["source"]) for t in detail["transitions"]] == [
        ("", "requested", "api"),
        ("requested", "booked", "api"),
    ]
    assert detail["publish_state"] == "published"
    assert len(google_fake.requests_for("events.patch")) == 1


def test_impossible_action_gets_409_when_booking_is_final(
    setup: GoogleSetup, schedule: Schedule, owner_client: Client
) -> None:
    booking = BookingFactory(calendar=setup.calendar, schedule=schedule, status="cancelled")
    response = owner_client.post(f"/api/v1.0/bookings/{booking.pk}/confirm/")
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert "cancelled" in response.json()["detail"]


def test_session_post_without_csrf_token_is_refused_when_enforced(
    setup: GoogleSetup, schedule: Schedule
) -> None:
    booking = BookingFactory(calendar=setup.calendar, schedule=schedule)
    client = Client(enforce_csrf_checks=True)
    client.force_login(setup.user)
    assert client.post(f"/api/v1.0/bookings/{booking.pk}/deny/").status_code == 403
    booking.refresh_from_db()
    assert booking.status == BookingStatus.REQUESTED


# --- Calendars, schedules, Google accounts --------------------------------------------------------


def test_calendars_list_shows_only_own_calendars_when_listed(
    setup: GoogleSetup, owner_client: Client
) -> None:
    CalendarFactory()  # someone else's
    mine = CalendarFactory(owner=setup.user)
    ids = {c["id"] for c in owner_client.get("/api/v1.0/calendars/").json()}
    assert ids == {setup.calendar.pk, mine.pk}


def test_schedule_calendar_change_moves_the_watch_channel_when_updated(
    setup: GoogleSetup,
    schedule: Schedule,
    owner_client: Client,
    google_fake: FakeGoogleCalendar,
    commit: Commit,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.GOOGLE_WEBHOOK_URL = "https://convoke.example.org/webhooks/google-calendar/"
    other_id = "team@group.calendar.google.com"
    google_fake.calendar_add(calendar_id=other_id, subject=setup.subject)
    other = GoogleCalendarFactory(
        owner=setup.user, google_account=setup.account, remote_id=other_id
    )

    def move_to(calendar_id: int) -> dict[str, Any]:
        with commit():
            response = owner_client.patch(
                f"/api/v1.0/schedules/{schedule.slug}/",
                data={"calendar": calendar_id, "auto_confirm": True},
                content_type="application/json",
            )
        assert response.status_code == 200, response.content
        return response.json()

    assert move_to(setup.calendar.pk)["calendar"] == setup.calendar.pk  # unchanged
    assert google_fake.requests_for("events.watch") == []
    moved = move_to(other.pk)
    assert moved["calendar"] == other.pk and moved["auto_confirm"]
    assert [c.calendar_id for c in google_fake.live_channels()] == [other_id]
    move_to(setup.calendar.pk)
    assert [c.calendar_id for c in google_fake.live_channels()] == [setup.calendar.remote_id]
    assert len(google_fake.requests_for("channels.stop")) == 1


def test_schedule_update_refuses_another_users_calendar_when_patched(
    schedule: Schedule, owner_client: Client
) -> None:
    foreign = CalendarFactory()
    response = owner_client.patch(
        f"/api/v1.0/schedules/{schedule.slug}/",
        data={"calendar": foreign.pk},
        content_type="application/json",
    )
    assert response.status_code == 400 and "calendar" in response.json()
    schedule.refresh_from_db()
    assert schedule.calendar_id != foreign.pk


def test_other_subscribers_schedule_is_404_when_patched(owner_client: Client) -> None:
    theirs = ScheduleFactory()
    response = owner_client.patch(
        f"/api/v1.0/schedules/{theirs.slug}/",
        data={"active": False},
        content_type="application/json",
    )
    assert response.status_code == 404


def test_disconnect_revokes_grant_and_disconnects_calendars_when_requested(
    setup: GoogleSetup, owner_client: Client, google_fake: FakeGoogleCalendar
) -> None:
    response = owner_client.post(f"/api/v1.0/google-accounts/{setup.account.pk}/disconnect/")
    assert response.status_code == 200 and response.json()["revoked"]
    account = GoogleAccount.objects.get(pk=setup.account.pk)
    assert account.revoked and account.credentials is None
    assert not Calendar.objects.get(pk=setup.calendar.pk).connected
    assert google_fake.grants_revoked(subject=setup.subject)


def test_other_subscribers_google_account_is_404_when_disconnecting(
    owner_client: Client, google_fake: FakeGoogleCalendar
) -> None:
    other = google_setup_create(google_fake, n=2)
    response = owner_client.post(f"/api/v1.0/google-accounts/{other.account.pk}/disconnect/")
    assert response.status_code == 404
    assert not GoogleAccount.objects.get(pk=other.account.pk).revoked


# --- OpenAPI --------------------------------------------------------------------------------------


def test_openapi_schema_validates_and_documents_the_booking_routes_when_served() -> None:
    response = Client().get("/api/v1.0/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate_schema(schema)
    paths = schema["paths"]
    assert "/api/v1.0/schedules/{slug}/bookings/" in paths
    # The public request needs no credentials; the rest takes a session or a token.
    assert (
        "security" not in schema
        and "security" not in paths["/api/v1.0/schedules/{slug}/bookings/"]["post"]
    )
    assert paths["/api/v1.0/bookings/"]["get"]["security"] == [
        {"cookieAuth": []},
        {"tokenAuth": []},
    ]
    for path in (
        "/api/v1.0/bookings/",
        "/api/v1.0/bookings/{booking_id}/",
        "/api/v1.0/bookings/{booking_id}/confirm/",
        "/api/v1.0/bookings/{booking_id}/deny/",
        "/api/v1.0/bookings/{booking_id}/cancel/",
        "/api/v1.0/calendars/",
        "/api/v1.0/schedules/{slug}/",
    ):
        assert path in paths, path
