"""``POST /webhooks/google-calendar/``: the contract for each header case (docs/design.md 1.4).

Tasks go through the real broker to a queue of the test's own that no worker consumes, so
each test sees exactly what the webhook enqueued and that it ran nothing itself.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import DatabaseError, connection
from django.test import Client
from django.utils import timezone

from gcal_push.models import ChannelState, GoogleCalendarChannel, GoogleCalendarSyncState
from tests.fixtures import TaskQueue
from tests.gcal_push.factories import GoogleCalendarChannelFactory
from tests.log_scan import SENSITIVE_VALUES
from tests.metrics import CounterWatch

# Transactional: the webhook runs in autocommit, as in production, so its enqueue is real.
pytestmark = pytest.mark.django_db(transaction=True)

URL = "/webhooks/google-calendar/"


@pytest.fixture
def channel() -> GoogleCalendarChannel:
    channel = GoogleCalendarChannelFactory()
    SENSITIVE_VALUES.add(channel.token)
    return channel


@pytest.fixture
def client() -> Iterator[Client]:
    # CSRF checks on, as for any browser: Google sends no CSRF token.
    yield Client(enforce_csrf_checks=True)


def google_headers(
    channel: GoogleCalendarChannel, state: str = "exists", **overrides: str
) -> dict[str, str]:
    headers = {
        "X-Goog-Channel-ID": channel.channel_id,
        "X-Goog-Channel-Token": channel.token,
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-State": state,
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/x/events",
        "X-Goog-Message-Number": "2",
        "X-Goog-Channel-Expiration": "Tue, 01 Dec 2026 10:00:00 GMT",
        "User-Agent": "APIs-Google",
    }
    headers.update(overrides)
    return {name: value for name, value in headers.items() if value is not None}


def post(client: Client, headers: dict[str, str], body: bytes = b"") -> int:
    return client.post(URL, data=body, content_type="", headers=headers).status_code


def sync_state(channel: GoogleCalendarChannel) -> GoogleCalendarSyncState:
    return GoogleCalendarSyncState.objects.get(pk=channel.calendar_id)


_notifications: list[CounterWatch] = []


@pytest.fixture(autouse=True)
def _notifications_watched() -> Any:
    _notifications[:] = [CounterWatch("convoke_webhook_notifications")]
    yield
    _notifications.clear()


def counter(outcome: str) -> int:
    """How many notifications with this outcome the test counted."""
    return int(_notifications[0].total(outcome=outcome))


@pytest.mark.parametrize("state", ["exists", "not_exists"])
def test_change_marks_dirty_and_enqueues_one_sync_when_none_pending(
    client: Client, channel: GoogleCalendarChannel, task_queue: TaskQueue, state: str
) -> None:
    assert post(client, google_headers(channel, state)) == 200
    state_row = sync_state(channel)
    assert state_row.dirty and state_row.sync_pending and state_row.pending_since is not None
    assert task_queue.size() == 1
    channel.refresh_from_db()
    assert channel.last_notification_at is not None
    assert counter("sync_enqueued") == 1


def test_later_changes_coalesce_into_the_pending_sync_when_one_is_pending(
    client: Client, channel: GoogleCalendarChannel, task_queue: TaskQueue
) -> None:
    statuses = [post(client, google_headers(channel)) for _ in range(25)]
    assert statuses == [200] * 25
    assert task_queue.size() == 1
    assert counter("sync_enqueued") == 1
    assert counter("coalesced") == 24


def test_change_enqueues_again_when_the_pending_claim_is_stale(
    client: Client, channel: GoogleCalendarChannel, task_queue: TaskQueue
) -> None:
    GoogleCalendarSyncState.objects.filter(pk=channel.calendar_id).update(
        sync_pending=True, pending_since=timezone.now() - dt.timedelta(hours=1)
    )
    assert post(client, google_headers(channel)) == 200
    assert task_queue.size() == 1


def test_sync_message_is_acknowledged_without_work_when_channel_is_new(
    client: Client, task_queue: TaskQueue
) -> None:
    # Google may send "sync" before our events.watch call has returned: no resource id yet.
    pending = GoogleCalendarChannelFactory(state=ChannelState.PENDING, resource_id="")
    headers = google_headers(
        pending, "sync", **{"X-Goog-Resource-ID": "abc", "X-Goog-Message-Number": "1"}
    )
    assert post(client, headers) == 200
    assert not sync_state(pending).dirty
    assert task_queue.size() == 0
    assert counter("sync_acknowledged") == 1


def test_change_is_accepted_when_channel_is_retiring(client: Client, task_queue: TaskQueue) -> None:
    # During a renewal both channels deliver until the old one is stopped.
    retiring = GoogleCalendarChannelFactory(state=ChannelState.RETIRING)
    assert post(client, google_headers(retiring)) == 200
    assert sync_state(retiring).dirty
    assert task_queue.size() == 1


@pytest.mark.parametrize(
    ("overrides", "outcome"),
    [
        ({"X-Goog-Channel-ID": "convoke-unknown"}, "unknown_channel"),
        ({"X-Goog-Channel-ID": None}, "unknown_channel"),
        ({"X-Goog-Channel-ID": "c" * 10_000}, "unknown_channel"),
        ({"X-Goog-Channel-Token": "wrong-token"}, "bad_token"),
        ({"X-Goog-Channel-Token": None}, "bad_token"),
        ({"X-Goog-Channel-Token": "é" * 40}, "bad_token"),
        ({"X-Goog-Channel-Token": "t" * 100_000}, "bad_token"),
        ({"X-Goog-Resource-ID": "another-resource"}, "resource_mismatch"),
        ({"X-Goog-Resource-ID": None}, "resource_mismatch"),
        ({"X-Goog-Resource-State": "deleted"}, "unknown_state"),
        ({"X-Goog-Resource-State": None}, "unknown_state"),
    ],
)
def test_notification_is_ignored_with_200_when_headers_do_not_verify(
    client: Client,
    channel: GoogleCalendarChannel,
    task_queue: TaskQueue,
    overrides: dict[str, str],
    outcome: str,
) -> None:
    assert post(client, google_headers(channel, **overrides)) == 200
    state_row = sync_state(channel)
    assert not state_row.dirty and not state_row.sync_pending
    assert task_queue.size() == 0
    assert counter(outcome) == 1


def test_notification_is_ignored_when_channel_is_stopped(
    client: Client, task_queue: TaskQueue
) -> None:
    stopped = GoogleCalendarChannelFactory(state=ChannelState.STOPPED)
    assert post(client, google_headers(stopped)) == 200
    assert not sync_state(stopped).dirty
    assert task_queue.size() == 0
    assert counter("stopped_channel") == 1


def test_token_never_reaches_the_log_when_it_is_wrong(
    client: Client,
    channel: GoogleCalendarChannel,
    task_queue: TaskQueue,
    caplog: pytest.LogCaptureFixture,
) -> None:
    presented = "presented-secret-0123456789abcdef"
    SENSITIVE_VALUES.add(presented)
    with caplog.at_level(logging.DEBUG, logger="gcal_push"):
        post(client, google_headers(channel, **{"X-Goog-Channel-Token": presented}))
        post(client, google_headers(channel))
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "bad-token" in text
    assert presented not in text and channel.token not in text


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b'{"state": "sync", "channel": "attacker"}',
        b"\x00\xff" * 1000,
        b"x" * (5 * 1024 * 1024),
    ],
    ids=["empty", "json", "binary", "5MiB"],
)
def test_body_is_ignored_when_present(
    client: Client, channel: GoogleCalendarChannel, task_queue: TaskQueue, body: bytes
) -> None:
    assert post(client, google_headers(channel), body=body) == 200
    assert sync_state(channel).dirty
    assert task_queue.size() == 1


def test_headers_match_whatever_their_case_when_sent_over_a_socket(
    live_server: object, task_queue: TaskQueue
) -> None:
    import http.client
    from urllib.parse import urlsplit

    channel = GoogleCalendarChannelFactory()
    SENSITIVE_VALUES.add(channel.token)
    parts = urlsplit(live_server.url)  # type: ignore[attr-defined]
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request(
        "POST",
        URL,
        body=b"",
        headers={
            "x-goog-channel-id": channel.channel_id,
            "X-GOOG-CHANNEL-TOKEN": channel.token,
            "x-Goog-Resource-Id": channel.resource_id,
            "x-goog-resource-state": "exists",
            "Content-Length": "0",
        },
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    assert response.status == 200
    assert sync_state(channel).dirty
    assert task_queue.size() == 1


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_method_other_than_post_is_refused_when_used(
    client: Client, channel: GoogleCalendarChannel, task_queue: TaskQueue, method: str
) -> None:
    response = getattr(client, method)(URL, headers=google_headers(channel))
    assert response.status_code == 405
    assert not sync_state(channel).dirty


def test_answer_is_503_when_the_mark_cannot_be_recorded(
    client: Client, channel: GoogleCalendarChannel, task_queue: TaskQueue
) -> None:
    # The one narrow simulation of this file: the database refuses writes to the sync state.
    def refuse(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if sql.lstrip().upper().startswith("UPDATE") and "google_calendar_sync_states" in sql:
            raise DatabaseError("simulated: database unavailable")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(refuse):
        response = client.post(URL, data=b"", content_type="", headers=google_headers(channel))
    assert response.status_code == 503
    assert task_queue.size() == 0
    assert counter("not_recorded") == 1
    # Google retries a 503; the retry is recorded once the database answers again.
    assert post(client, google_headers(channel)) == 200
    assert sync_state(channel).dirty
    assert task_queue.size() == 1


def test_webhook_answers_within_a_constant_number_of_queries_when_a_burst_arrives(
    client: Client,
    channel: GoogleCalendarChannel,
    task_queue: TaskQueue,
    django_assert_max_num_queries: object,
) -> None:
    post(client, google_headers(channel))
    post(client, google_headers(channel))
    # Find the channel, stamp it, mark dirty, try the claim, count: whatever the burst's size.
    with django_assert_max_num_queries(7):  # type: ignore[operator]
        assert post(client, google_headers(channel)) == 200
