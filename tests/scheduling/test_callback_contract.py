"""The CalDAV scheduling callback passes the inbound endpoints' contract (tests/contracts.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core import mail

from invitations.models import Delivery, DeliveryStatus
from scheduling.models import SchedulingMessage
from tests.contracts import InboundEndpointContract, InboundRequest
from tests.scheduling.itip import CALLBACK_URL, callback_headers, itip_body

pytestmark = pytest.mark.django_db


class CallbackEndpoint:
    url = CALLBACK_URL
    accepted = (202,)
    refused = (401,)

    def valid(self) -> InboundRequest:
        return InboundRequest(itip_body(), "text/calendar", callback_headers())

    def unverified(self) -> list[InboundRequest]:
        body = itip_body()
        return [
            InboundRequest(body, "text/calendar", callback_headers(key="wrong"), "wrong key"),
            InboundRequest(body, "text/calendar", callback_headers(key=None), "no key"),
            InboundRequest(body, "text/calendar", callback_headers(key=""), "empty key"),
            InboundRequest(
                body, "text/calendar", callback_headers(key="wrong", legacy=True), "legacy"
            ),
        ]

    def hostile(self) -> list[InboundRequest]:
        headers = callback_headers()
        calendar = "text/calendar"
        return [
            InboundRequest(b"", calendar, headers, "empty"),
            InboundRequest(b"\x00\xff" * 500, calendar, headers, "binary"),
            InboundRequest(
                itip_body().replace(b"kick-off", b"\xff\xfe"), calendar, headers, "utf8"
            ),
            InboundRequest(b"BEGIN:VCALENDAR\r\n" * 5000, calendar, headers, "unterminated"),
            InboundRequest(
                b"X" * (settings.CALLBACK_MAX_BYTES + 1), calendar, headers, "too large"
            ),
            InboundRequest(itip_body(), "application/json", headers, "content type"),
            InboundRequest(itip_body(method="PUBLISH"), calendar, headers, "method mismatch"),
            InboundRequest(
                itip_body(), calendar, callback_headers(method="COUNTER"), "method header"
            ),
            InboundRequest(
                itip_body(), calendar, {**headers, "X-LS-Sender": "mailto:" + "a" * 5000}, "long"
            ),
            InboundRequest(itip_body(sequence=2**40), calendar, headers, "sequence overflow"),
            InboundRequest(
                itip_body(attendees=[(f"g{i}@example.net", "NEEDS-ACTION") for i in range(3000)]),
                calendar,
                headers,
                "many attendees",
            ),
        ]

    def recorded(self) -> int:
        return SchedulingMessage.objects.count()

    def handed_over(self) -> int:
        # A pending delivery is enqueued after the commit, and by the sweep should that fail.
        return Delivery.objects.filter(status=DeliveryStatus.PENDING).count()

    def worked(self) -> int:
        return len(mail.outbox) + Delivery.objects.exclude(status=DeliveryStatus.PENDING).count()


class TestSchedulingCallbackContract(InboundEndpointContract):
    @pytest.fixture
    def endpoint(self) -> Any:
        return CallbackEndpoint()
