"""Watch channels against the fake Google server: create, tear down, refusals, revoked grants."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction

from calendars.models import Calendar, GoogleAccount
from calendars.services import schedule_update
from gcal_push.channels import channels_teardown
from gcal_push.models import ChannelState, GoogleCalendarChannel, GoogleCalendarSyncState
from gcal_push.services import calendars_watch_reconcile, channel_create, channel_teardown
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.google_push import ClientTransport, GooglePushEmitter
from tests.fixtures import WEBHOOK_URL, TaskQueue, owner_create, watched_create
from tests.metrics import CounterWatch

pytestmark = pytest.mark.django_db(transaction=True)


def live_channels(calendar: Calendar) -> list[GoogleCalendarChannel]:
    return list(GoogleCalendarChannel.objects.live().filter(calendar=calendar))


def test_create_watches_once_and_stores_the_channel_when_calendar_is_watched(
    google: FakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched = watched_create(google, owner_create(google))[0]
    first = channel_create(calendar_id=watched.calendar.pk)
    second = channel_create(calendar_id=watched.calendar.pk)
    assert (first.created, second.created, second.skipped) == (1, 0, 1)
    [channel] = live_channels(watched.calendar)
    assert channel.state == ChannelState.ACTIVE
    [at_google] = google.live_channels(watched.remote_id)
    assert (at_google.id, at_google.token, at_google.address) == (
        channel.channel_id,
        channel.token,
        WEBHOOK_URL,
    )
    assert channel.resource_id == at_google.resource_id
    assert channel.expiration is not None
    assert abs(channel.expiration.timestamp() * 1000 - at_google.expiration_ms) < 1000
    assert len(google.requests_for("events.watch")) == 1
    # The first sync, queued for a worker, takes the initial sync token.
    assert task_queue.size() == 1


def test_sync_message_is_recognised_when_it_arrives_before_the_watch_response(
    google: FakeGoogleCalendar, client: object, task_queue: TaskQueue
) -> None:
    watched = watched_create(google, owner_create(google))[0]
    notifications = CounterWatch("convoke_webhook_notifications")
    # Google posts "sync" from inside the watch request, before answering it.
    with GooglePushEmitter(google, ClientTransport(client)) as emitter:
        channel_create(calendar_id=watched.calendar.pk)
    assert emitter.states() == [(live_channels(watched.calendar)[0].channel_id, "sync", 200)]
    assert notifications.moved() == {(("outcome", "sync_acknowledged"), ("state", "sync")): 1}


def test_create_leaves_no_live_channel_when_watch_fails(
    google: FakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched = watched_create(google, owner_create(google))[0]
    google.fault_add(operation="events.watch", status=403, reason="forbidden")
    summary = channel_create(calendar_id=watched.calendar.pk)
    assert (summary.created, summary.failed) == (0, 1)
    assert live_channels(watched.calendar) == []
    assert google.live_channels(watched.remote_id) == []
    channel = GoogleCalendarChannel.objects.get(calendar=watched.calendar)
    assert channel.state == ChannelState.STOPPED
    state = GoogleCalendarSyncState.objects.get(pk=watched.calendar.pk)
    assert (state.failure_count, state.last_error) == (1, "forbidden")
    # The next attempt (the hourly maintenance, or the task's retry) creates it.
    assert channel_create(calendar_id=watched.calendar.pk).created == 1


def test_create_falls_back_to_periodic_sync_when_google_refuses_the_watch_for_good(
    google: FakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched = watched_create(google, owner_create(google), push_supported=False)[0]
    summary = channel_create(calendar_id=watched.calendar.pk)
    assert (summary.created, summary.failed, summary.skipped) == (0, 0, 1)
    state = GoogleCalendarSyncState.objects.get(pk=watched.calendar.pk)
    assert state.watch_unsupported and state.watch_unsupported_at is not None
    assert live_channels(watched.calendar) == []
    # Not tried again, and synced by the periodic reconciliation instead.
    assert channel_create(calendar_id=watched.calendar.pk).created == 0
    assert len(google.requests_for("events.watch")) == 1
    from gcal_push.services import calendars_reconcile

    # Its first sync was queued at once; once a worker has run it, the reconciliation
    # queues the next.
    assert task_queue.purge() == 1
    GoogleCalendarSyncState.objects.filter(pk=watched.calendar.pk).update(sync_pending=False)
    assert calendars_reconcile() == 1
    assert task_queue.size() == 1


def test_create_tears_down_and_marks_the_account_when_its_grant_is_revoked(
    google: FakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    owner = owner_create(google)
    first, second = watched_create(google, owner, count=2)
    assert channel_create(calendar_id=first.calendar.pk).created == 1
    google.grant_revoke(subject=owner.subject)
    google.access_tokens_expire(subject=owner.subject)
    summary = channel_create(calendar_id=second.calendar.pk)
    assert summary.failed == 1
    account = GoogleAccount.objects.get(pk=owner.account.pk)
    assert account.revoked and account.revoked_at is not None
    assert not Calendar.objects.filter(
        pk__in=[first.calendar.pk, second.calendar.pk], connected=True
    )
    assert GoogleCalendarChannel.objects.live().count() == 0
    assert GoogleCalendarSyncState.objects.filter(grant_revoked_at__isnull=False).count() == 2


def test_maintenance_stops_channels_when_calendar_is_no_longer_a_schedules(
    google: FakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched = watched_create(google, owner_create(google))[0]
    channel_create(calendar_id=watched.calendar.pk)
    assert channels_teardown().stopped == 0  # still a schedule's calendar: kept
    assert len(live_channels(watched.calendar)) == 1
    watched.schedule.active = False
    watched.schedule.save()
    summary = channels_teardown()
    assert summary.stopped == 1
    assert live_channels(watched.calendar) == []
    assert google.live_channels(watched.remote_id) == []
    # Stopping again is a no-op.
    assert channels_teardown().stopped == 0


def test_teardown_stops_channels_at_once_when_the_caller_says_so(
    google: FakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    # As when an account is being disconnected: its calendars are still schedules' calendars.
    watched = watched_create(google, owner_create(google))[0]
    channel_create(calendar_id=watched.calendar.pk)
    channels_teardown(calendar_ids=[watched.calendar.pk], force=True, concurrency=1)
    assert live_channels(watched.calendar) == []
    assert google.live_channels(watched.remote_id) == []
    assert task_queue.size() == 1  # only the first sync, queued by the creation
    assert channel_teardown(calendar_id=watched.calendar.pk).stopped == 0


def test_teardown_counts_404_as_done_when_google_forgot_the_channel(
    google: FakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched = watched_create(google, owner_create(google))[0]
    channel_create(calendar_id=watched.calendar.pk)
    google.fault_add(operation="channels.stop", status=404, reason="notFound")
    watched.calendar.connected = False
    watched.calendar.save()
    assert channel_teardown(calendar_id=watched.calendar.pk).stopped == 1
    assert live_channels(watched.calendar) == []


def test_teardown_keeps_the_channel_retiring_when_stop_fails(
    google: FakeGoogleCalendar, task_queue: TaskQueue, settings: Any
) -> None:
    watched = watched_create(google, owner_create(google))[0]
    channel_create(calendar_id=watched.calendar.pk)
    watched.calendar.connected = False
    watched.calendar.save()
    settings.GOOGLE_API_MAX_RETRIES = 2
    google.fault_add(operation="channels.stop", status=503, times=3)  # outlasts the retries
    summary = channel_teardown(calendar_id=watched.calendar.pk)
    assert (summary.stopped, summary.failed, summary.transient_failures) == (0, 1, 1)
    [channel] = live_channels(watched.calendar)
    assert channel.state == ChannelState.RETIRING
    assert channel_teardown(calendar_id=watched.calendar.pk).stopped == 1
    assert google.live_channels(watched.remote_id) == []


def test_schedule_update_moves_the_watch_when_the_calendar_changes(
    google: FakeGoogleCalendar, settings: object
) -> None:
    # Eager tasks: the booking code's calls run the channel tasks after the commit.
    owner = owner_create(google)
    old, new = watched_create(google, owner, count=2)
    new.schedule.delete()
    calendars_watch_reconcile(calendar_ids=[old.calendar.pk])
    assert len(google.live_channels(old.remote_id)) == 1
    schedule_update(schedule_id=old.schedule.pk, changes={"calendar_id": new.calendar.pk})
    assert google.live_channels(old.remote_id) == []
    assert len(google.live_channels(new.remote_id)) == 1
    assert [c.state for c in GoogleCalendarChannel.objects.filter(calendar=new.calendar)] == [
        ChannelState.ACTIVE
    ]
    assert [c.state for c in GoogleCalendarChannel.objects.filter(calendar=old.calendar)] == [
        ChannelState.STOPPED
    ]


def test_schedule_update_only_enqueues_the_watch_change_when_it_commits(
    google: FakeGoogleCalendar, task_queue: TaskQueue, client: Any
) -> None:
    # Google is failing: a call made in the PATCH's commit would fail the request. The
    # schedule change enqueues the push-layer action; Google is called by the task only.
    owner = owner_create(google)
    old, new = watched_create(google, owner, count=2)
    new.schedule.delete()
    channel_create(calendar_id=old.calendar.pk)
    task_queue.purge()
    calls = len(google.requests_for("channels.stop")) + len(google.requests_for("events.watch"))
    google.fault_add(operation="channels.stop", status=503, times=50)
    client.force_login(owner.user)

    response = client.patch(
        f"/api/v1.0/schedules/{old.schedule.slug}/",
        {"calendar": new.calendar.pk},
        content_type="application/json",
    )

    assert response.status_code == 200, response.content
    after = len(google.requests_for("channels.stop")) + len(google.requests_for("events.watch"))
    assert after == calls  # nothing reached Google during the request
    assert task_queue.size() == 1  # the push-layer action, for a worker
    assert len(live_channels(old.calendar)) == 1


def test_database_refuses_a_second_active_channel_when_code_would_create_one(
    google: FakeGoogleCalendar,
) -> None:
    watched = watched_create(google, owner_create(google))[0]
    GoogleCalendarChannel.objects.create(
        calendar=watched.calendar, state=ChannelState.ACTIVE, resource_id="r1"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        GoogleCalendarChannel.objects.create(
            calendar=watched.calendar, state=ChannelState.ACTIVE, resource_id="r1"
        )
    GoogleCalendarChannel.objects.create(calendar=watched.calendar, state=ChannelState.PENDING)
    with pytest.raises(IntegrityError), transaction.atomic():
        GoogleCalendarChannel.objects.create(calendar=watched.calendar, state=ChannelState.PENDING)
