"""Hostile bodies in the delivery path (issue 11, findings 2, 3 and 5, build item 3).

A body that an earlier version accepted (the budgets refuse it at the callback now) is still
in the outbox after an upgrade: the worker must dead-letter it at its first attempt, with a
reason an operator can read, and the next version of the same event must still be delivered,
without the list of changes. Accepted bodies whose recurrence is costly must render at once.
Tasks run eagerly (tests/settings.py); the bound is generous, the figures are in bench/.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from celery.exceptions import TimeLimitExceeded
from django.core import mail
from django.test import Client

from invitations.models import Delivery, DeliveryStatus
from invitations.services import delivery_send
from invitations.tasks import delivery_send_task
from tests.hostile import HOSTILE_DIR
from tests.invitations.test_delivery import make_delivery
from tests.scheduling.itip import itip_body, post_callback

pytestmark = pytest.mark.django_db

RENDER_BOUND_SECONDS = 5.0


def _poison(name: str) -> Delivery:
    """A delivery of a hostile body stored as if an earlier version had accepted it."""
    body = (HOSTILE_DIR / name).read_bytes()
    delivery = make_delivery(body=body)
    uid = f"{name.removesuffix('.ics')}@hostile.example.org"
    Delivery.objects.filter(pk=delivery.pk).update(uid=uid)
    return delivery


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("zone-secondly-dtstart.ics", "time-zone rule frequency"),
        ("zone-secondly-recurrence-id.ics", "time-zone rule frequency"),
        ("zone-minutely-interval-zero.ics", "time-zone rule frequency"),
        ("zone-daily-impossible-day.ics", "too expensive to compute"),
        ("nested-components.ics", "nesting depth"),
        ("dtstart-year-9999.ics", "year range"),
        ("until-year-9999.ics", "year range"),
        ("tzid-too-long.ics", "TZID length"),
    ],
)
def test_stored_poison_is_dead_at_its_first_attempt_with_a_reason_when_the_worker_renders_it(
    name: str, reason: str
) -> None:
    delivery = _poison(name)

    started = time.monotonic()
    delivery_send(delivery_id=delivery.pk)
    elapsed = time.monotonic() - started

    delivery.refresh_from_db()
    assert elapsed < RENDER_BOUND_SECONDS
    assert delivery.status == DeliveryStatus.DEAD
    assert delivery.attempts == 1
    assert reason in delivery.last_error
    assert delivery.next_attempt_at is None
    assert mail.outbox == []


def test_next_version_is_delivered_without_changes_when_the_previous_version_is_poison(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    poison = _poison("zone-secondly-dtstart.ics")
    Delivery.objects.filter(pk=poison.pk).update(
        uid="shared@hostile.example.org", recipient="bob@example.net"
    )
    delivery_send(delivery_id=poison.pk)
    update = itip_body(uid="shared@hostile.example.org", sequence=1, summary="Moved kick-off")

    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = post_callback(client, update)
    elapsed = time.monotonic() - started

    assert response.status_code == 202
    assert elapsed < RENDER_BOUND_SECONDS
    delivery = Delivery.objects.exclude(pk=poison.pk).get()
    assert delivery.status == DeliveryStatus.SENT, delivery.last_error
    [sent] = mail.outbox
    assert "Moved kick-off" in sent.subject
    assert "What changed" not in sent.body


@pytest.mark.parametrize(
    "name", ["event-secondly-impossible-day.ics", "empty-tzid.ics", "tzid-names-a-folder.ics"]
)
def test_accepted_hostile_body_is_delivered_at_once_when_the_worker_renders_it(
    client: Client, django_capture_on_commit_callbacks: Any, name: str
) -> None:
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = post_callback(client, (HOSTILE_DIR / name).read_bytes())
    elapsed = time.monotonic() - started

    assert response.status_code == 202
    assert elapsed < RENDER_BOUND_SECONDS
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SENT, delivery.last_error
    assert delivery.attempts == 1
    assert len(mail.outbox) == 1


def test_update_lists_what_changed_when_the_previous_version_is_readable(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        post_callback(client, itip_body(uid="plain@example.org"))
        moved = itip_body(uid="plain@example.org", sequence=1).replace(b"T140000", b"T160000")
        post_callback(client, moved.replace(b"T150000", b"T170000"))

    assert [d.status for d in Delivery.objects.order_by("pk")] == [DeliveryStatus.SENT] * 2
    assert "What changed" in mail.outbox[1].body


def test_attempt_ended_by_the_hard_time_limit_is_dead_at_once_when_celery_reports_it() -> None:
    # Celery calls the task's on_failure in the worker's main process when the hard time
    # limit has ended the process that ran the attempt (celery/worker/request.py).
    delivery = make_delivery(status=DeliveryStatus.SENDING, attempts=1)

    delivery_send_task.on_failure(TimeLimitExceeded(90), "task-id", (delivery.pk,), {}, None)

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD
    assert "hard time limit" in delivery.last_error
    assert delivery.next_attempt_at is None
