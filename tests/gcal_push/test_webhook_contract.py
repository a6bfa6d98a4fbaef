"""The Google push webhook passes the inbound endpoints' contract (tests/contracts.py).

Google retries only 500, 502, 503 and 504 and treats any other status as a failed message,
so a notification that fails verification is answered 200 and ignored. Tasks go through the
real broker to the test's own queue, which nothing consumes: what the webhook handed over
stays there, and nothing of the sync runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from gcal_push.models import GoogleCalendarChannel, GoogleCalendarSyncState
from tests.contracts import InboundEndpointContract, InboundRequest
from tests.fixtures import TaskQueue
from tests.gcal_push.factories import GoogleCalendarChannelFactory
from tests.gcal_push.test_webhook import URL, google_headers
from tests.log_scan import SENSITIVE_VALUES

pytestmark = pytest.mark.django_db(transaction=True)


class GoogleWebhookEndpoint:
    url = URL
    accepted = (200,)
    refused = (200,)

    def __init__(self, channel: GoogleCalendarChannel, queue: TaskQueue) -> None:
        self.channel = channel
        self.queue = queue

    def valid(self) -> InboundRequest:
        return InboundRequest(headers=google_headers(self.channel))

    def unverified(self) -> list[InboundRequest]:
        channel = self.channel
        return [
            InboundRequest(
                headers=google_headers(channel, **{"X-Goog-Channel-Token": "forged"}),
                name="wrong token",
            ),
            InboundRequest(
                headers=google_headers(channel, **{"X-Goog-Channel-Token": None}),  # type: ignore[arg-type]
                name="no token",
            ),
            InboundRequest(
                headers=google_headers(channel, **{"X-Goog-Channel-ID": "convoke-forged"}),
                name="unknown channel",
            ),
            InboundRequest(
                headers=google_headers(channel, **{"X-Goog-Resource-ID": "another-resource"}),
                name="wrong resource",
            ),
        ]

    def hostile(self) -> list[InboundRequest]:
        channel = self.channel
        return [
            InboundRequest(headers={}, name="no headers"),
            InboundRequest(
                headers=google_headers(channel, **{"X-Goog-Channel-Token": "t" * 100_000}),
                name="huge token",
            ),
            InboundRequest(
                headers=google_headers(channel, **{"X-Goog-Resource-State": "\x00\u2028bad"}),
                name="odd state",
            ),
            InboundRequest(
                headers=google_headers(channel, **{"X-Goog-Message-Number": "-1e309"}),
                name="odd number",
            ),
            InboundRequest(
                body=b"{" * 10_000,
                content_type="application/json",
                headers=google_headers(channel),
                name="a body",
            ),
        ]

    def recorded(self) -> int:
        return GoogleCalendarSyncState.objects.filter(dirty=True).count()

    def handed_over(self) -> int:
        return self.queue.size()

    def worked(self) -> int:
        return GoogleCalendarSyncState.objects.exclude(last_synced_at=None).count()


class TestGoogleWebhookContract(InboundEndpointContract):
    @pytest.fixture
    def client(self) -> Iterator[Client]:
        yield Client(enforce_csrf_checks=True)  # Google sends no CSRF token

    @pytest.fixture
    def endpoint(self, task_queue: TaskQueue) -> Any:
        channel = GoogleCalendarChannelFactory()
        SENSITIVE_VALUES.add(channel.token)
        return GoogleWebhookEndpoint(channel, task_queue)
