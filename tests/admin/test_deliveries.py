"""The deliveries console: status filter, mark dead, and the email preview (nothing sent)."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from invitations.models import Delivery, DeliveryStatus
from invitations.services import MARKED_DEAD_REASON, delivery_email_build
from tests.admin.support import delivery_create, message_create
from tests.scheduling.itip import itip_body

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:invitations_delivery_changelist"


def _preview_url(delivery: Delivery) -> str:
    return reverse("admin:invitations_delivery_preview", args=[delivery.pk])


def test_status_filter_lists_only_dead_deliveries_when_dead_is_chosen(
    operator_client: Client,
) -> None:
    dead = delivery_create(status=DeliveryStatus.DEAD, attempts=10, last_error="SMTP 550")
    failed = delivery_create(status=DeliveryStatus.FAILED, attempts=2)
    pending = delivery_create(status=DeliveryStatus.PENDING)

    text = operator_client.get(reverse(CHANGELIST), {"status__exact": "dead"}).content.decode()

    assert f"/delivery/{dead.pk}/change/" in text
    assert "SMTP 550" in text
    assert f"/delivery/{failed.pk}/change/" not in text
    assert f"/delivery/{pending.pk}/change/" not in text
    assert "b***@example.net" in text and "bob@example.net" not in text


def test_list_shows_next_attempt_in_operator_zone_when_a_retry_is_due(
    operator_client: Client,
) -> None:
    due = dt.datetime(2031, 7, 1, 16, 30, tzinfo=dt.UTC)
    delivery_create(status=DeliveryStatus.FAILED, attempts=3, next_attempt_at=due)

    text = operator_client.get(reverse(CHANGELIST)).content.decode()

    # 16:30 UTC is 12:30 in New York in July (EDT).
    assert "2031-07-01 12:30 EDT" in text


def test_mark_dead_stops_pending_and_failed_and_leaves_the_rest_when_selected(
    operator_client: Client,
) -> None:
    pending = delivery_create(status=DeliveryStatus.PENDING)
    failed = delivery_create(
        status=DeliveryStatus.FAILED,
        attempts=3,
        last_error="SMTP 451",
        next_attempt_at=timezone.now() + dt.timedelta(minutes=5),
    )
    sending = delivery_create(status=DeliveryStatus.SENDING, attempts=1)
    sent = delivery_create(status=DeliveryStatus.SENT, attempts=1)

    response = operator_client.post(
        reverse(CHANGELIST),
        {"action": "mark_dead", "_selected_action": [pending.pk, failed.pk, sending.pk, sent.pk]},
        follow=True,
    )

    text = response.content.decode()
    assert f"2 deliveries marked dead: #{pending.pk}, #{failed.pk}" in text
    assert f"#{sending.pk} (is sending)" in text and f"#{sent.pk} (is sent)" in text
    rows = {d.pk: d for d in Delivery.objects.all()}
    assert rows[pending.pk].status == rows[failed.pk].status == DeliveryStatus.DEAD
    assert rows[pending.pk].last_error == MARKED_DEAD_REASON
    assert rows[failed.pk].last_error == f"{MARKED_DEAD_REASON}; last error: SMTP 451"
    assert rows[failed.pk].next_attempt_at is None
    assert rows[sending.pk].status == DeliveryStatus.SENDING
    assert rows[sent.pk].status == DeliveryStatus.SENT


def test_marked_dead_delivery_is_not_swept_when_its_retry_time_comes(
    operator_client: Client,
) -> None:
    from invitations.services import deliveries_sweep

    failed = delivery_create(
        status=DeliveryStatus.FAILED, attempts=2, next_attempt_at=timezone.now()
    )
    operator_client.post(
        reverse(CHANGELIST), {"action": "mark_dead", "_selected_action": [failed.pk]}
    )

    result = deliveries_sweep(now=timezone.now() + dt.timedelta(hours=1))

    assert failed.pk not in result.enqueued
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.DEAD


def test_dead_delivery_can_be_retried_after_being_marked_dead_when_asked_again(
    operator_client: Client, smtp_sink: Any, django_capture_on_commit_callbacks: Any
) -> None:
    delivery = delivery_create(status=DeliveryStatus.FAILED, attempts=2)
    operator_client.post(
        reverse(CHANGELIST), {"action": "mark_dead", "_selected_action": [delivery.pk]}
    )
    with django_capture_on_commit_callbacks(execute=True):
        operator_client.post(
            reverse(CHANGELIST), {"action": "retry_now", "_selected_action": [delivery.pk]}
        )
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert [m.message_id for m in smtp_sink.messages] == [delivery.message_id_header]


def _tokenless(html: str) -> str:
    return re.sub(r"token=[^&\"]+", "token=T", html).strip()


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.iframes: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "iframe":
            self.iframes.append(dict(attrs))


def test_preview_shows_html_in_a_sandbox_text_and_attachment_and_sends_nothing(
    operator_client: Client, smtp_sink: Any
) -> None:
    delivery = delivery_create(status=DeliveryStatus.DEAD, attempts=10)
    expected = delivery_email_build(delivery=delivery)

    response = operator_client.get(_preview_url(delivery))

    assert response.status_code == 200
    text = response.content.decode()
    page = _Page()
    page.feed(text)
    assert len(page.iframes) == 1
    frame = page.iframes[0]
    assert frame["sandbox"] == ""
    html_alternatives = [c for c, kind in expected.alternatives if kind == "text/html"]  # type: ignore[attr-defined]
    # The same HTML as a real attempt builds (RSVP tokens carry their signing time).
    assert _tokenless(frame["srcdoc"] or "") == _tokenless(html_alternatives[0])
    assert "BEGIN:VCALENDAR" in text and "text/calendar" in text
    assert expected.subject in text
    # Nothing was sent and the delivery did not move.
    assert smtp_sink.messages == [] and mail.outbox == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DEAD, 10)


def test_preview_keeps_hostile_event_text_inert_when_the_summary_holds_markup(
    operator_client: Client,
) -> None:
    summary = '"><script>alert(1)</script><iframe src="https://evil.example/">'
    message = message_create(body=itip_body(uid="evil@dav.example.org", summary=summary))
    delivery = delivery_create(message=message)

    text = operator_client.get(_preview_url(delivery)).content.decode()

    page = _Page()
    page.feed(text)
    assert len(page.iframes) == 1  # the event's text could not open a second frame
    assert "<script>alert(1)" not in text
    assert page.iframes[0]["sandbox"] == ""


def test_preview_says_so_when_the_stored_message_cannot_be_rendered(
    operator_client: Client,
) -> None:
    message = message_create(body=b"BEGIN:VCALENDAR\r\nnot really\r\n")
    delivery = delivery_create(message=message)

    response = operator_client.get(_preview_url(delivery))

    assert response.status_code == 200
    assert "cannot be rendered into an email" in response.content.decode()


def test_preview_answers_404_when_the_delivery_does_not_exist(operator_client: Client) -> None:
    assert (
        operator_client.get(
            reverse("admin:invitations_delivery_preview", args=[999999])
        ).status_code
        == 404
    )
    assert operator_client.get("/admin/invitations/delivery/not-a-number/preview/").status_code in (
        302,
        404,
    )
