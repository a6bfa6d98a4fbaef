"""The console's page of inbound REPLYs: masked, read-only, failed ones applied again."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.test import Client

from invitations.models import InboundReply, InboundReplyStatus
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _reply(status: str, n: int) -> InboundReply:
    body = f"BEGIN:VCALENDAR\r\nX-N:{n}\r\nEND:VCALENDAR\r\n".encode()
    return InboundReply.objects.create(
        body=body,
        body_sha256=hashlib.sha256(body).hexdigest(),
        attendee=f"guest{n}@example.net",
        organizer="alice@example.org",
        uid=f"event-{n}@example.org",
        status=status,
        attempts=12 if status == InboundReplyStatus.FAILED else 1,
        last_error="CalDAV server unavailable; gave up" if status == "failed" else "",
    )


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_list_masks_addresses_and_stays_flat_in_queries(
    staff_client: Client, django_assert_max_num_queries: Any
) -> None:
    for n in range(200):
        _reply(InboundReplyStatus.APPLIED if n % 2 else InboundReplyStatus.FAILED, n)
    with django_assert_max_num_queries(12):
        response = staff_client.get("/admin/invitations/inboundreply/?all=")
    page = response.content.decode()
    assert response.status_code == 200
    assert "g***@example.net" in page
    assert "guest1@example.net" not in page


def test_apply_again_requeues_only_failed_replies(
    staff_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    failed, applied = _reply("failed", 1), _reply("applied", 2)
    with django_capture_on_commit_callbacks() as callbacks:
        response = staff_client.post(
            "/admin/invitations/inboundreply/",
            {"action": "apply_again", "_selected_action": [failed.pk, applied.pk]},
        )
    assert response.status_code == 302
    assert len(callbacks) == 1
    failed.refresh_from_db()
    applied.refresh_from_db()
    assert (failed.status, failed.attempts, failed.last_error) == ("pending", 0, "")
    assert applied.status == "applied"


def test_page_is_refused_to_non_staff() -> None:
    client = Client()
    client.force_login(UserFactory())
    response = client.get("/admin/invitations/inboundreply/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
