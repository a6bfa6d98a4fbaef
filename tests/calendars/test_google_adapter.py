"""The Google adapter against the fake Google server, through the real client libraries."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from django.db import connection

from calendars.models import GoogleAccount
from calendars.providers import google
from gcal_push.credentials import google_client
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fixtures import GoogleSetup

pytestmark = pytest.mark.django_db

START = dt.datetime(2031, 3, 4, 9, 0, tzinfo=dt.UTC)


def _event_body(event_id: str, **extra: object) -> dict[str, object]:
    return {
        "id": event_id,
        "summary": "Intro call",
        "start": {"dateTime": START.isoformat(), "timeZone": "Europe/Paris"},
        "end": {"dateTime": (START + dt.timedelta(minutes=30)).isoformat()},
        "attendees": [{"email": "bookee@example.net", "displayName": "Bob"}],
        **extra,
    }


def _client(setup: GoogleSetup) -> google.GoogleCalendarClient:
    return google_client(GoogleAccount.objects.get(pk=setup.account.pk))


def test_event_id_is_base32hex_when_generated() -> None:
    ids = {google.event_id_new() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 26 and set(i) <= set("0123456789abcdefghijklmnopqrstuv") for i in ids)


def test_insert_sends_updates_and_reused_id_raises_duplicate_when_inserted_twice(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar
) -> None:
    client = _client(google_setup)
    event_id = google.event_id_new()
    event = client.event_insert(
        calendar_id=google_setup.calendar.remote_id,
        event=_event_body(event_id, status="tentative"),
        send_updates=google.SendUpdates.ALL,
    )
    assert (event.id, event.status, event.start) == (event_id, "tentative", START)
    assert event.attendee("BOOKEE@example.net") is not None
    with pytest.raises(google.Duplicate):
        client.event_insert(
            calendar_id=google_setup.calendar.remote_id,
            event=_event_body(event_id),
            send_updates=google.SendUpdates.ALL,
        )
    assert [(m.kind, m.recipient) for m in google_fake.outbox] == [
        ("invitation", "bookee@example.net")
    ]
    first = google_fake.requests_for("events.insert")[0]
    assert first.param("sendUpdates") == "all"
    assert first.path == f"/calendar/v3/calendars/{google_setup.calendar.remote_id}/events"


def test_patch_with_stale_etag_raises_precondition_failed_when_event_changed(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar
) -> None:
    client = _client(google_setup)
    calendar_id = google_setup.calendar.remote_id
    event = client.event_insert(
        calendar_id=calendar_id,
        event=_event_body(google.event_id_new(), status="tentative"),
        send_updates=google.SendUpdates.NONE,
    )
    google_fake.attendee_respond(
        calendar_id, event.id, email="bookee@example.net", response_status="accepted"
    )
    with pytest.raises(google.PreconditionFailed):
        client.event_patch(
            calendar_id=calendar_id,
            event_id=event.id,
            changes={"status": "confirmed"},
            send_updates=google.SendUpdates.ALL,
            etag=event.etag,
        )
    fresh = client.event_get(calendar_id=calendar_id, event_id=event.id)
    patched = client.event_patch(
        calendar_id=calendar_id,
        event_id=event.id,
        changes={"status": "confirmed"},
        send_updates=google.SendUpdates.ALL,
        etag=fresh.etag,
    )
    assert patched.status == "confirmed"
    assert patched.attendee("bookee@example.net").response_status == "accepted"  # type: ignore[union-attr]
    assert google_fake.requests_for("events.patch")[0].headers["if-match"] == event.etag


def test_delete_twice_raises_gone_and_unknown_raises_not_found_when_deleting(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar
) -> None:
    client = _client(google_setup)
    calendar_id = google_setup.calendar.remote_id
    event = client.event_insert(
        calendar_id=calendar_id,
        event=_event_body(google.event_id_new()),
        send_updates=google.SendUpdates.ALL,
    )
    client.event_delete(
        calendar_id=calendar_id, event_id=event.id, send_updates=google.SendUpdates.ALL
    )
    with pytest.raises(google.Gone):
        client.event_delete(
            calendar_id=calendar_id, event_id=event.id, send_updates=google.SendUpdates.ALL
        )
    with pytest.raises(google.NotFound):
        client.event_delete(
            calendar_id=calendar_id, event_id="unknown00000", send_updates=google.SendUpdates.ALL
        )
    assert client.event_get(calendar_id=calendar_id, event_id=event.id).is_cancelled
    assert [m.kind for m in google_fake.outbox] == ["invitation", "cancellation"]


def test_delete_with_stale_etag_raises_precondition_failed_when_event_changed(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar
) -> None:
    client = _client(google_setup)
    calendar_id = google_setup.calendar.remote_id
    event = client.event_insert(
        calendar_id=calendar_id,
        event=_event_body(google.event_id_new()),
        send_updates=google.SendUpdates.ALL,
    )
    google_fake.attendee_respond(
        calendar_id, event.id, email="bookee@example.net", response_status="accepted"
    )
    with pytest.raises(google.PreconditionFailed):
        client.event_delete(
            calendar_id=calendar_id,
            event_id=event.id,
            send_updates=google.SendUpdates.ALL,
            etag=event.etag,
        )
    assert not client.event_get(calendar_id=calendar_id, event_id=event.id).is_cancelled
    fresh = client.event_get(calendar_id=calendar_id, event_id=event.id)
    client.event_delete(
        calendar_id=calendar_id,
        event_id=event.id,
        send_updates=google.SendUpdates.ALL,
        etag=fresh.etag,
    )
    assert google_fake.requests_for("events.delete")[-1].headers["if-match"] == fresh.etag
    assert [m.kind for m in google_fake.outbox] == ["invitation", "cancellation"]


def test_patch_restores_a_deleted_event_and_if_match_prevents_it_when_etag_is_old(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar
) -> None:
    # Google keeps a deleted event's details on the organizer's calendar so that it can be
    # restored: a patch brings it back and mails the guests again. Only If-Match stops it.
    client = _client(google_setup)
    calendar_id = google_setup.calendar.remote_id
    event = client.event_insert(
        calendar_id=calendar_id,
        event=_event_body(google.event_id_new(), status="tentative"),
        send_updates=google.SendUpdates.ALL,
    )
    google_fake.event_delete_as_owner(calendar_id, event.id)
    with pytest.raises(google.PreconditionFailed):
        client.event_patch(
            calendar_id=calendar_id,
            event_id=event.id,
            changes={"status": "confirmed"},
            send_updates=google.SendUpdates.ALL,
            etag=event.etag,
        )
    assert google_fake.restored == []
    restored = client.event_patch(
        calendar_id=calendar_id,
        event_id=event.id,
        changes={"summary": "Renamed"},
        send_updates=google.SendUpdates.ALL,
    )
    assert restored.status == "confirmed"
    assert google_fake.restored == [(calendar_id, event.id)]
    assert [m.kind for m in google_fake.outbox] == ["invitation", "invitation"]


def test_organizer_entry_is_marked_by_google_from_the_calendar_address_when_inserted(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar
) -> None:
    # "organizer" and "self" are read-only: Google sets them on the entry whose address is
    # the calendar the event was created in (a secondary calendar's id, not the owner's
    # address), and ignores them anywhere else.
    client = _client(google_setup)
    calendar_id = google_setup.calendar.remote_id
    event = client.event_insert(
        calendar_id=calendar_id,
        event=_event_body(
            google.event_id_new(),
            attendees=[
                {"email": calendar_id, "organizer": True, "responseStatus": "needsAction"},
                {"email": google_setup.email, "organizer": True, "self": True},
                {"email": "bookee@example.net"},
            ],
        ),
        send_updates=google.SendUpdates.ALL,
    )
    assert event.raw["organizer"] == {
        "email": calendar_id,
        "displayName": calendar_id,
        "self": True,
    }
    assert [(a.email, a.is_organizer, a.is_self, a.response_status) for a in event.attendees] == [
        (calendar_id, True, True, "needsAction"),
        (google_setup.email, False, False, "needsAction"),
        ("bookee@example.net", False, False, "needsAction"),
    ]
    # Google mails the guests, never the calendar's own entry (nor the user who acts).
    assert [m.recipient for m in google_fake.outbox] == ["bookee@example.net"]


def test_listing_with_show_deleted_keeps_a_deleted_events_answers_when_incremental(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar
) -> None:
    client = _client(google_setup)
    calendar_id = google_setup.calendar.remote_id
    first = client.events_page(calendar_id=calendar_id, show_deleted=True)
    plain = client.events_page(calendar_id=calendar_id)
    event = client.event_insert(
        calendar_id=calendar_id,
        event=_event_body(google.event_id_new()),
        send_updates=google.SendUpdates.ALL,
    )
    google_fake.attendee_respond(
        calendar_id, event.id, email="bookee@example.net", response_status="declined"
    )
    google_fake.event_delete_as_owner(calendar_id, event.id)
    assert first.next_sync_token and plain.next_sync_token
    [detailed] = client.events_page(
        calendar_id=calendar_id, sync_token=first.next_sync_token, show_deleted=True
    ).events
    [bare] = client.events_page(calendar_id=calendar_id, sync_token=plain.next_sync_token).events
    assert detailed.is_cancelled and detailed.attendee("bookee@example.net") is not None
    assert detailed.attendee("bookee@example.net").response_status == "declined"  # type: ignore[union-attr]
    assert bare.is_cancelled and bare.attendees == () and bare.updated is None


def test_import_sends_no_email_and_is_keyed_by_ical_uid_when_repeated(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar
) -> None:
    client = _client(google_setup)
    calendar_id = google_setup.calendar.remote_id
    body = _event_body(google.event_id_new(), iCalUID="uid-1@convoke", status="tentative")
    first = client.event_import(calendar_id=calendar_id, event=body)
    second = client.event_import(calendar_id=calendar_id, event={**body, "status": "confirmed"})
    assert first.id == second.id
    assert second.status == "confirmed"
    assert len(google_fake.events(calendar_id)) == 1
    assert google_fake.outbox == []


@dataclasses.dataclass
class _Listed:
    events: list[google.Event]
    next_sync_token: str | None
    pages: int


def _listing(
    client: google.GoogleCalendarClient, *, calendar_id: str, sync_token: str | None = None
) -> _Listed:
    """Every page of ``events.list``, two events a page, as the sync reads them."""
    listed = _Listed(events=[], next_sync_token=None, pages=0)
    page_token = None
    while True:
        page = client.events_page(
            calendar_id=calendar_id, sync_token=sync_token, page_token=page_token, max_results=2
        )
        listed.pages += 1
        listed.events.extend(page.events)
        if not page.next_page_token:
            listed.next_sync_token = page.next_sync_token
            return listed
        page_token = page.next_page_token


def test_listing_follows_pages_and_incremental_sync_returns_changes_when_token_used(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar
) -> None:
    client = _client(google_setup)
    calendar_id = google_setup.calendar.remote_id
    ids = []
    for _ in range(5):
        event = client.event_insert(
            calendar_id=calendar_id,
            event=_event_body(google.event_id_new()),
            send_updates=google.SendUpdates.NONE,
        )
        ids.append(event.id)
    google_fake.empty_page_before_last = True
    full = _listing(client, calendar_id=calendar_id)
    assert [e.id for e in full.events] == ids
    assert full.pages == 4 and full.next_sync_token
    # The "None is dropped" trap: no syncToken parameter at all on a full listing.
    assert all("syncToken" not in r.query for r in google_fake.requests_for("events.list"))

    google_fake.event_delete_as_owner(calendar_id, ids[0])
    google_fake.attendee_respond(
        calendar_id, ids[1], email="bookee@example.net", response_status="declined"
    )
    delta = _listing(client, calendar_id=calendar_id, sync_token=full.next_sync_token)
    assert [(e.id, e.status) for e in delta.events] == [
        (ids[0], "cancelled"),
        (ids[1], "confirmed"),
    ]
    assert delta.events[1].attendee("bookee@example.net").response_status == "declined"  # type: ignore[union-attr]

    google_fake.sync_tokens_invalidate(calendar_id)
    with pytest.raises(google.SyncTokenInvalid):
        _listing(client, calendar_id=calendar_id, sync_token=delta.next_sync_token)
    with pytest.raises(ValueError, match="empty sync token"):
        client.events_page(calendar_id=calendar_id, sync_token="")


def test_watch_and_stop_keep_channel_bookkeeping_when_stopped_twice(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar
) -> None:
    client = _client(google_setup)
    calendar_id = google_setup.calendar.remote_id
    channel = client.events_watch(
        calendar_id=calendar_id,
        channel_id="chan-1",
        address="https://convoke.example.org/webhooks/google-calendar/",
        token="secret-token",
        ttl_seconds=3600,
    )
    assert channel.resource_id and channel.expiration is not None
    assert (
        dt.timedelta(minutes=59)
        < channel.expiration - dt.datetime.now(dt.UTC)
        <= dt.timedelta(hours=1)
    )
    assert [c.id for c in google_fake.live_channels(calendar_id)] == ["chan-1"]
    with pytest.raises(google.ChannelIdNotUnique):
        client.events_watch(
            calendar_id=calendar_id,
            channel_id="chan-1",
            address="https://convoke.example.org/webhooks/google-calendar/",
        )
    client.channel_stop(channel_id=channel.id, resource_id=channel.resource_id)
    assert google_fake.live_channels(calendar_id) == []
    with pytest.raises(google.NotFound):
        client.channel_stop(channel_id=channel.id, resource_id=channel.resource_id)


def test_watch_raises_push_not_supported_when_calendar_cannot_be_watched(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar
) -> None:
    google_fake.calendar_add(
        calendar_id="holidays@group.v.calendar.google.com",
        subject=google_setup.subject,
        push_supported=False,
    )
    with pytest.raises(google.PushNotSupported):
        _client(google_setup).events_watch(
            calendar_id="holidays@group.v.calendar.google.com",
            channel_id="chan-2",
            address="https://convoke.example.org/webhooks/google-calendar/",
        )


def test_freebusy_reports_busy_time_when_events_overlap(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar
) -> None:
    calendar_id = google_setup.calendar.remote_id
    google_fake.busy_add(calendar_id, START, START + dt.timedelta(hours=1))
    result = _client(google_setup).freebusy(
        calendar_ids=[calendar_id, "nobody@example.com"],
        time_min=START - dt.timedelta(hours=1),
        time_max=START + dt.timedelta(minutes=30),
    )
    assert result.busy[calendar_id] == (
        google.BusyInterval(start=START, end=START + dt.timedelta(minutes=30)),
    )
    assert result.errors == {"nobody@example.com": "notFound"}


def test_calendar_list_returns_every_calendar_when_listed(
    google_setup: GoogleSetup,
) -> None:
    entries = _client(google_setup).calendar_list()
    assert {(e.id, e.primary) for e in entries} == {
        (google_setup.email, True),
        (google_setup.calendar.remote_id, False),
    }


@pytest.mark.parametrize(
    ("status", "reason"),
    [(429, "rateLimitExceeded"), (503, "backendError"), (403, "userRateLimitExceeded")],
)
def test_rate_limits_and_server_errors_are_retried_when_they_pass(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar, status: int, reason: str
) -> None:
    google_fake.fault_add(operation="events.get", status=status, reason=reason, times=2)
    event = google_fake.event_seed(
        google_setup.calendar.remote_id, _event_body(google.event_id_new())
    )
    got = _client(google_setup).event_get(
        calendar_id=google_setup.calendar.remote_id, event_id=event["id"]
    )
    assert got.id == event["id"]
    assert [r.status for r in google_fake.requests_for("events.get")] == [status, status, 200]


def test_retries_stop_and_raise_rate_limited_when_limit_persists(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.GOOGLE_API_MAX_RETRIES = 2
    google_fake.fault_add(operation="events.get", status=429, times=10)
    with pytest.raises(google.RateLimited):
        _client(google_setup).event_get(
            calendar_id=google_setup.calendar.remote_id, event_id="abcde"
        )
    assert len(google_fake.requests_for("events.get")) == 3


def test_quota_exceeded_is_not_retried_in_place_when_daily_quota_is_spent(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar
) -> None:
    google_fake.fault_add(operation="events.get", status=403, reason="quotaExceeded")
    with pytest.raises(google.RateLimited) as caught:
        _client(google_setup).event_get(
            calendar_id=google_setup.calendar.remote_id, event_id="abcde"
        )
    assert caught.value.reason == "quotaExceeded" and caught.value.retry_after_seconds
    assert len(google_fake.requests_for("events.get")) == 1


def test_expired_access_token_is_refreshed_and_stored_encrypted_when_google_answers_401(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar
) -> None:
    google_fake.access_tokens_expire(subject=google_setup.subject)
    entries = _client(google_setup).calendar_list()
    assert entries
    assert google_fake.refresh_count(subject=google_setup.subject) == 1
    assert [r.status for r in google_fake.requests_for("calendarList.list")] == [401, 200]
    account = GoogleAccount.objects.get(pk=google_setup.account.pk)
    new_token = account.credentials["token"]
    assert new_token != google_setup.access_token
    assert account.credentials["refresh_token"] == google_setup.refresh_token
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credentials FROM calendars_googleaccount WHERE id = %s", [account.pk]
        )
        raw = cursor.fetchone()[0]
    assert new_token not in raw and google_setup.refresh_token not in raw
    # The stored token is used next time: no second refresh.
    _client(google_setup).calendar_list()
    assert google_fake.refresh_count(subject=google_setup.subject) == 1


def test_revoked_grant_raises_auth_revoked_when_refresh_is_refused(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar
) -> None:
    google_fake.grant_revoke(subject=google_setup.subject)
    with pytest.raises(google.AuthRevoked):
        _client(google_setup).calendar_list()


def test_timeout_raises_unavailable_and_insert_stays_committed_when_answer_is_lost(
    google_setup: GoogleSetup, google_fake: FakeGoogleCalendar, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.GOOGLE_API_TIMEOUT_SECONDS = 0.3
    google_fake.timeout_after_commit(operation="events.insert", seconds=1.0)
    event_id = google.event_id_new()
    with pytest.raises(google.Unavailable):
        _client(google_setup).event_insert(
            calendar_id=google_setup.calendar.remote_id,
            event=_event_body(event_id),
            send_updates=google.SendUpdates.ALL,
        )
    assert google_fake.event(google_setup.calendar.remote_id, event_id) is not None


def test_disconnected_account_raises_auth_revoked_when_client_is_built(
    google_setup: GoogleSetup,
) -> None:
    GoogleAccount.objects.filter(pk=google_setup.account.pk).update(revoked=True)
    with pytest.raises(google.AuthRevoked):
        _client(google_setup)
