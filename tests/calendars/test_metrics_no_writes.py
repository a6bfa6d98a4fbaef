"""Finding 6: requests nobody authenticated write nothing to the database.

A flood of callbacks with a wrong key and of forged Google notifications (unknown channel,
wrong token) is refused and counted, in ``/metrics`` and in the admin's "refused in the last
hour", without one INSERT, UPDATE or DELETE: the database sees only the reads that verify.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from calendars.admin_panel import operator_panel_counts
from gcal_push.models import GoogleCalendarChannel
from tests.gcal_push.factories import GoogleCalendarChannelFactory
from tests.metrics import CounterWatch
from tests.scheduling.itip import itip_body, post_callback

pytestmark = pytest.mark.django_db

FLOOD = 150
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _rows() -> dict[str, int]:
    return {model._meta.label: model.objects.count() for model in apps.get_models()}


def _writes(captured: CaptureQueriesContext) -> list[str]:
    return [
        q["sql"][:80]
        for q in captured.captured_queries
        if q["sql"].lstrip().upper().startswith(WRITES)
    ]


def _google(client: Client, **headers: str) -> Any:
    return client.post("/webhooks/google-calendar/", headers=headers)


def test_unauthenticated_flood_writes_no_row_and_is_still_counted_when_refused(
    client: Client,
) -> None:
    channel: GoogleCalendarChannel = GoogleCalendarChannelFactory()
    refusals = CounterWatch("convoke_callbacks_refused")
    notifications = CounterWatch("convoke_webhook_notifications")
    body = itip_body()
    before = _rows()

    with CaptureQueriesContext(connection) as captured:
        for index in range(FLOOD):
            wrong = post_callback(client, body, key=f"wrong-key-{index:032d}")
            assert wrong.status_code == 401
            unknown = _google(
                client,
                **{
                    "X-Goog-Channel-ID": f"forged-{index}",
                    "X-Goog-Channel-Token": "guess",
                    "X-Goog-Resource-ID": "r",
                    "X-Goog-Resource-State": "exists",
                },
            )
            assert unknown.status_code == 200
            forged = _google(
                client,
                **{
                    "X-Goog-Channel-ID": channel.channel_id,
                    "X-Goog-Channel-Token": f"not-the-token-{index}",
                    "X-Goog-Resource-ID": channel.resource_id,
                    "X-Goog-Resource-State": "exists",
                },
            )
            assert forged.status_code == 200

    assert _writes(captured) == []
    assert _rows() == before
    assert refusals.moved() == {(("reason", "unauthorized"),): FLOOD}
    assert notifications.total(outcome="unknown_channel") == FLOOD
    assert notifications.total(outcome="bad_token") == FLOOD
    assert operator_panel_counts().refused_last_hour == {"unauthorized": FLOOD}


def test_refused_body_writes_no_row_when_the_key_is_right(client: Client) -> None:
    before = _rows()
    with CaptureQueriesContext(connection) as captured:
        assert post_callback(client, b"not a calendar").status_code == 400
    assert _writes(captured) == []
    assert _rows() == before
