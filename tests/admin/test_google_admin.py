"""Google push in the console: channels and sync states, their actions through the gcal_push
services against the fake Google server, accounts and calendars without tokens, and the
Google figures on ``/metrics``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from gcal_push.models import ChannelState, GoogleCalendarChannel, GoogleCalendarSyncState
from tests.fixtures import (
    Commit,
    PushFakeGoogleCalendar,
    channels_seed,
    owner_create,
    watched_create,
)

pytestmark = pytest.mark.django_db

CHANNELS = "admin:gcal_push_googlecalendarchannel_changelist"
SYNC_STATES = "admin:gcal_push_googlecalendarsyncstate_changelist"


def _act(client: Client, commit: Commit, url: str, action: str, *pks: int) -> str:
    with commit():
        response = client.post(
            reverse(url), {"action": action, "_selected_action": list(pks)}, follow=True
        )
    assert response.status_code == 200
    return response.content.decode()


def _metrics(client: Client, settings: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    settings.METRICS_TOKEN = ""
    text = client.get("/metrics").content.decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_channel_list_highlights_expiry_under_24_hours_and_never_shows_tokens(
    operator_client: Client, google: PushFakeGoogleCalendar
) -> None:
    owner = owner_create(google)
    soon, later, gone = watched_create(google, owner, count=3)
    (soon_channel,) = channels_seed(google, [soon], expires_in=dt.timedelta(hours=3))
    (later_channel,) = channels_seed(google, [later], expires_in=dt.timedelta(days=5))
    channels_seed(google, [gone], expires_in=-dt.timedelta(hours=1))
    GoogleCalendarSyncState.objects.filter(pk=later.calendar.pk).update(
        last_synced_at=dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)
    )

    text = operator_client.get(reverse(CHANNELS)).content.decode()

    assert text.count("(under 24 h)") == 1
    assert '<span class="cv-soon"' in text
    assert "4 d 23 h" in text or "5 d 0 h" in text
    assert 'cv-bad" title="' in text and ">expired</span>" in text
    assert "2026-01-10 07:00 EST" in text  # the last successful sync, in New York time
    for channel in GoogleCalendarChannel.objects.all():
        assert channel.token not in text
    soon_only = operator_client.get(reverse(CHANNELS), {"expiry": "soon"}).content.decode()
    assert soon_channel.channel_id in soon_only
    assert later_channel.channel_id not in soon_only


def test_renew_now_replaces_the_channel_before_stopping_it_when_an_operator_asks(
    operator_client: Client, google: PushFakeGoogleCalendar, commit: Commit, settings: Any
) -> None:
    owner = owner_create(google)
    (watched,) = watched_create(google, owner)
    (old,) = channels_seed(google, [watched], expires_in=dt.timedelta(days=5))
    before = _metrics(operator_client, settings)

    text = _act(operator_client, commit, CHANNELS, "renew_now", old.pk)

    assert f"Calendar #{watched.calendar.pk}: 1 renewed." in text
    old.refresh_from_db()
    assert old.state == ChannelState.STOPPED and old.renewed_at is not None
    new = GoogleCalendarChannel.objects.get(calendar=watched.calendar, state=ChannelState.ACTIVE)
    assert new.pk != old.pk
    assert [c.id for c in google.live_channels(watched.remote_id)] == [new.channel_id]
    calls = [r.operation for r in google.requests if r.operation.startswith("channels")]
    assert calls[-1] == "channels.stop"
    after = _metrics(operator_client, settings)
    watch_ok = ("convoke_google_calls_total", (("method", "events.watch"), ("outcome", "ok")))
    stop_ok = ("convoke_google_calls_total", (("method", "channels.stop"), ("outcome", "ok")))
    assert after[watch_ok] - before.get(watch_ok, 0) == 1
    assert after[stop_ok] - before.get(stop_ok, 0) == 1


def test_stop_tears_down_the_calendars_channels_when_an_operator_asks(
    operator_client: Client, google: PushFakeGoogleCalendar, commit: Commit
) -> None:
    owner = owner_create(google)
    (watched,) = watched_create(google, owner)
    (channel,) = channels_seed(google, [watched], expires_in=dt.timedelta(days=2))

    text = _act(operator_client, commit, CHANNELS, "stop", channel.pk)

    assert f"Calendar #{watched.calendar.pk}: 1 stopped." in text
    channel.refresh_from_db()
    assert channel.state == ChannelState.STOPPED
    assert google.live_channels(watched.remote_id) == []


def test_resync_lists_the_calendar_at_google_when_an_operator_asks(
    operator_client: Client, google: PushFakeGoogleCalendar, commit: Commit
) -> None:
    owner = owner_create(google)
    (watched,) = watched_create(google, owner)
    (channel,) = channels_seed(google, [watched], expires_in=dt.timedelta(days=2))

    text = _act(operator_client, commit, CHANNELS, "resync", channel.pk)

    assert f"Calendar #{watched.calendar.pk}: sync enqueued." in text
    state = GoogleCalendarSyncState.objects.get(pk=watched.calendar.pk)
    assert state.last_synced_at is not None and state.sync_token
    assert "events.list" in [r.operation for r in google.requests]
    # From the sync states' page too; the second request finds nothing new to do.
    again = _act(operator_client, commit, SYNC_STATES, "resync", watched.calendar.pk)
    assert f"Calendar #{watched.calendar.pk}:" in again


def test_sync_state_filter_lists_calendars_whose_last_sync_failed_when_chosen(
    operator_client: Client, google: PushFakeGoogleCalendar
) -> None:
    owner = owner_create(google)
    failing, recovered = watched_create(google, owner, count=2)
    now = timezone.now()
    GoogleCalendarSyncState.objects.create(
        calendar=failing.calendar, last_failure_at=now, last_error="backendError"
    )
    GoogleCalendarSyncState.objects.create(
        calendar=recovered.calendar,
        last_failure_at=now - dt.timedelta(hours=1),
        last_synced_at=now,
    )

    text = operator_client.get(reverse(SYNC_STATES), {"last_sync": "failed"}).content.decode()

    assert f"/googlecalendarsyncstate/{failing.calendar.pk}/change/" in text
    assert f"/googlecalendarsyncstate/{recovered.calendar.pk}/change/" not in text
    assert 'title="backendError">Failed</span>' in text


def test_channel_actions_are_refused_when_staff_may_only_view(
    client: Client, google: PushFakeGoogleCalendar
) -> None:
    from django.contrib.auth.models import Permission

    from tests.factories import UserFactory

    owner = owner_create(google)
    (watched,) = watched_create(google, owner)
    (channel,) = channels_seed(google, [watched], expires_in=dt.timedelta(days=2))
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_googlecalendarchannel"))
    client.force_login(viewer)

    page = client.get(reverse(CHANNELS)).content.decode()
    client.post(reverse(CHANNELS), {"action": "stop", "_selected_action": [channel.pk]})

    assert 'value="stop"' not in page
    channel.refresh_from_db()
    assert channel.state == ChannelState.ACTIVE
    assert google.requests_for("channels.stop") == []


def test_accounts_and_calendars_show_connection_and_scopes_but_never_tokens(
    operator_client: Client, google: PushFakeGoogleCalendar
) -> None:
    owner = owner_create(google)
    (watched,) = watched_create(google, owner)
    revoked = owner_create(google, n=2)
    revoked.account.revoked = True
    revoked.account.save(update_fields=["revoked"])
    credentials = dict(owner.account.credentials)  # type: ignore[arg-type]

    accounts = operator_client.get(reverse("admin:calendars_googleaccount_changelist"))
    account_page = operator_client.get(
        reverse("admin:calendars_googleaccount_change", args=[owner.account.pk])
    )
    calendars = operator_client.get(reverse("admin:calendars_calendar_changelist"))

    for response in (accounts, account_page, calendars):
        text = response.content.decode()
        assert response.status_code == 200
        for secret in (credentials["token"], credentials["refresh_token"]):
            assert secret not in text
        assert "refresh_token" not in text and "credentials" not in text.lower()
    accounts_text = accounts.content.decode()
    assert ">Connected</span>" in accounts_text and ">Revoked</span>" in accounts_text
    assert "calendar.events" in accounts_text
    assert ">Connected</span>" in calendars.content.decode()
    assert watched.calendar.display_name in calendars.content.decode()


def test_channel_expirations_ahead_are_on_metrics_when_channels_near_their_end(
    client: Client, google: PushFakeGoogleCalendar, settings: Any
) -> None:
    owner = owner_create(google)
    watched = watched_create(google, owner, count=4)
    channels_seed(google, watched[:1], expires_in=-dt.timedelta(minutes=5))
    channels_seed(google, watched[1:2], expires_in=dt.timedelta(minutes=30))
    channels_seed(google, watched[2:3], expires_in=dt.timedelta(hours=20))
    channels_seed(google, watched[3:], expires_in=dt.timedelta(days=6))

    samples = _metrics(client, settings)

    def ahead(within: str) -> float:
        return samples[("convoke_google_channels_expiring", (("within", within),))]

    assert (ahead("expired"), ahead("1h"), ahead("24h"), ahead("7d")) == (1, 2, 3, 4)
