"""The index panel: the counts that matter, from real refusals and stored rows."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calendars.admin_panel import operator_panel_counts
from calendars.metrics import recent_count_add
from calendars.models import PublishState
from gcal_push.models import ChannelState
from invitations.models import DeliveryStatus
from scheduling.models import REFUSALS_RECENT
from tests.admin.support import channel_create, delivery_create, sync_state_create
from tests.factories import BookingFactory, GoogleCalendarFactory
from tests.scheduling.itip import itip_body, post_callback

pytestmark = pytest.mark.django_db


def _count(text: str, element_id: str) -> int:
    found = re.search(rf'id="{element_id}">(\d+)<', text)
    assert found, element_id
    return int(found.group(1))


def _refuse_some_callbacks(client: Client) -> None:
    post_callback(client, itip_body(), key="wrong-key-0000000000000000000000")
    post_callback(client, itip_body(), key=None)
    post_callback(client, itip_body(), content_type="application/json")
    post_callback(client, b"not a calendar")
    assert post_callback(client, itip_body()).status_code == 202  # accepted: not counted


def test_panel_counts_what_needs_attention_when_the_index_opens(
    client: Client, operator_client: Client
) -> None:
    for status, n in (
        (DeliveryStatus.PENDING, 1),
        (DeliveryStatus.FAILED, 2),
        (DeliveryStatus.DEAD, 3),
    ):
        for _ in range(n):
            delivery_create(status=status)
    delivery_create(status=DeliveryStatus.SENT)
    calendars = [GoogleCalendarFactory() for _ in range(5)]
    channel_create(calendar=calendars[0], expires_in=-dt.timedelta(hours=1))
    channel_create(calendar=calendars[1], expires_in=dt.timedelta(hours=3))
    channel_create(calendar=calendars[2], expires_in=dt.timedelta(days=5))
    channel_create(
        calendar=calendars[3], expires_in=-dt.timedelta(hours=2), state=ChannelState.STOPPED
    )
    now = timezone.now()
    sync_state_create(calendar=calendars[0], last_failure_at=now, last_error="backendError")
    sync_state_create(
        calendar=calendars[1], last_synced_at=now, last_failure_at=now - dt.timedelta(hours=1)
    )
    sync_state_create(
        calendar=calendars[2], last_synced_at=now - dt.timedelta(hours=1), last_failure_at=now
    )
    BookingFactory(publish_state=PublishState.FAILED)
    _refuse_some_callbacks(client)
    recent_count_add(REFUSALS_RECENT, "unauthorized", now=time.time() - 2 * 3600)  # too old

    response = operator_client.get(reverse("admin:index"))

    text = response.content.decode()
    assert response.status_code == 200
    assert "What needs attention" in text
    # One more pending: the accepted callback's delivery (sent only after a real commit).
    assert _count(text, "cv-deliveries-pending") == 2
    assert _count(text, "cv-deliveries-failed") == 2
    assert _count(text, "cv-deliveries-dead") == 3
    assert _count(text, "cv-channels-expired") == 1
    assert _count(text, "cv-channels-expiring") == 1
    assert _count(text, "cv-calendars-failed") == 2
    assert _count(text, "cv-bookings-failed") == 1
    assert _count(text, "cv-refused-total") == 4
    refused = re.findall(r"<tr><td>([a-z_]+)</td><td>(\d+)</td></tr>", text)
    assert dict(refused) == {"unauthorized": "2", "content_type": "1", "body": "1"}
    # The app list is still there under the panel.
    assert "Scheduling" in text or "scheduling" in text


def test_panel_links_open_the_matching_filtered_lists_when_followed(
    operator_client: Client,
) -> None:
    dead = delivery_create(status=DeliveryStatus.DEAD)
    pending = delivery_create(status=DeliveryStatus.PENDING)
    expired_calendar, soon_calendar, failed_calendar = (GoogleCalendarFactory() for _ in range(3))
    expired = channel_create(calendar=expired_calendar, expires_in=-dt.timedelta(minutes=5))
    soon = channel_create(calendar=soon_calendar, expires_in=dt.timedelta(hours=2))
    sync_state_create(calendar=failed_calendar, last_failure_at=timezone.now())
    sync_state_create(calendar=soon_calendar, last_synced_at=timezone.now())
    text = operator_client.get(reverse("admin:index")).content.decode()
    links = dict(
        (element_id, href.replace("&amp;", "&"))
        for href, element_id in re.findall(
            r'<a href="(/admin/[^"]+\?[^"]+)"><span class="cv-count" id="([a-z-]+)"', text
        )
    )
    assert len(links) == 8

    def listed(element_id: str) -> str:
        page = operator_client.get(links[element_id])
        assert page.status_code == 200, links[element_id]
        return page.content.decode()

    assert f"/delivery/{dead.pk}/change/" in listed("cv-deliveries-dead")
    assert f"/delivery/{pending.pk}/change/" not in listed("cv-deliveries-dead")
    assert expired.channel_id in listed("cv-channels-expired")
    assert soon.channel_id not in listed("cv-channels-expired")
    assert soon.channel_id in listed("cv-channels-expiring")
    assert expired.channel_id not in listed("cv-channels-expiring")
    failed_page = listed("cv-calendars-failed")
    assert f"/googlecalendarsyncstate/{failed_calendar.pk}/change/" in failed_page
    assert f"/googlecalendarsyncstate/{soon_calendar.pk}/change/" not in failed_page
    for element_id in (
        "cv-deliveries-failed",
        "cv-deliveries-pending",
        "cv-bookings-failed",
        "cv-bookings-overlapping",
    ):
        listed(element_id)


def test_panel_shows_none_refused_when_the_last_hour_was_quiet(
    operator_client: Client,
) -> None:
    recent_count_add(REFUSALS_RECENT, "too_large", now=time.time() - 61 * 60)
    text = operator_client.get(reverse("admin:index")).content.decode()
    assert _count(text, "cv-refused-total") == 0
    assert "None." in text


def test_panel_counts_take_a_fixed_number_of_queries_when_rows_grow(
    django_assert_max_num_queries: Any,
) -> None:
    for _ in range(50):
        delivery_create(status=DeliveryStatus.DEAD)
        recent_count_add(REFUSALS_RECENT, "unauthorized")
    with django_assert_max_num_queries(4):  # refusals are counted in the cache, not a table
        counts = operator_panel_counts()
    assert counts.deliveries_dead == 50
    assert counts.refused_last_hour == {"unauthorized": 50}


def test_panel_counts_a_refusal_for_an_hour_then_forgets_it_when_time_passes() -> None:
    now = time.time()
    recent_count_add(REFUSALS_RECENT, "body", now=now - 59 * 60)
    recent_count_add(REFUSALS_RECENT, "body", now=now - 61 * 60)
    recent_count_add(REFUSALS_RECENT, "budget", now=now)

    assert operator_panel_counts().refused_last_hour == {"body": 1, "budget": 1}
