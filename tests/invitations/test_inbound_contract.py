"""The inbound-email webhook (mail clients' own iTIP answers, through Brevo) passes the
inbound endpoints' contract (tests/contracts.py). Brevo retries only after a timeout or a
429, so a request that fails verification is a 400, as anymail answers."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from calendars.ical import parse_itip
from invitations.models import InboundReply, InboundReplyStatus
from tests.contracts import InboundEndpointContract, InboundRequest
from tests.fakes.brevo_inbound import FakeBrevoApi
from tests.invitations.test_inbound_reply import (
    ATTENDEE,
    CORPUS_REPLY,
    SECRET,
    URL,
    invitation_delivered,
    reply_email,
)

pytestmark = pytest.mark.django_db

JSON = "application/json"


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}


class InboundEmailEndpoint:
    url = URL
    accepted = (200,)
    refused = (400,)

    def __init__(self, brevo: FakeBrevoApi, reply: bytes) -> None:
        self.body = json.dumps(brevo.payload(reply_email(reply))).encode()

    def valid(self) -> InboundRequest:
        return InboundRequest(self.body, JSON, _auth(SECRET))

    def unverified(self) -> list[InboundRequest]:
        return [
            InboundRequest(self.body, JSON, _auth("brevo:wrong-secret"), "wrong secret"),
            InboundRequest(self.body, JSON, {}, "no credentials"),
            InboundRequest(self.body, JSON, {"Authorization": "Bearer x"}, "other scheme"),
        ]

    def hostile(self) -> list[InboundRequest]:
        auth = _auth(SECRET)
        return [
            InboundRequest(b"not json", JSON, auth, "not json"),
            InboundRequest(b"[1, 2, 3]", JSON, auth, "a list"),
            InboundRequest(b'{"items": "nope"}', JSON, auth, "items not a list"),
            InboundRequest(b'{"items": [{"Headers": 7}]}', JSON, auth, "odd item"),
            InboundRequest(b"{" * 50_000, JSON, auth, "deep"),
            InboundRequest(b"\xff\xfe\x00", JSON, auth, "binary"),
        ]

    def recorded(self) -> int:
        return InboundReply.objects.count()

    def handed_over(self) -> int:
        # A pending reply is applied after the commit, and by the sweep should that fail.
        return InboundReply.objects.filter(status=InboundReplyStatus.PENDING).count()

    def worked(self) -> int:
        return InboundReply.objects.exclude(status=InboundReplyStatus.PENDING).count()


class TestInboundEmailContract(InboundEndpointContract):
    @pytest.fixture
    def endpoint(self, brevo_api: FakeBrevoApi, corpus_dir: Path, settings: Any) -> Any:
        settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
        reply = (corpus_dir / "ics" / CORPUS_REPLY).read_bytes()
        # A REPLY is believed only from an address Convoke invited (invitations.inbound_trust).
        invitation_delivered(uid=parse_itip(reply).uid, attendee=ATTENDEE)
        return InboundEmailEndpoint(brevo_api, reply)
