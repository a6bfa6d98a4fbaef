"""Acknowledge now, work later: the booking request answers before Google is written to, and a
real Celery worker (not the eager mode of the other tests) publishes the booking."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client

from calendars.models import Booking, PublishState
from tests.calendars.test_bookings_google import slot
from tests.factories import ScheduleFactory
from tests.fakes.celery_worker import tasks_routed_to, wait_until, worker_thread
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fixtures import google_setup_create

WORKER_TIMEOUT_SECONDS = 30.0


@pytest.mark.django_db(transaction=True)
def test_request_is_acknowledged_before_google_and_synced_by_a_worker_when_one_runs(
    google_fake: FakeGoogleCalendar,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    settings.GOOGLE_INVITE_ENABLED = True
    setup = google_setup_create(google_fake)
    schedule = ScheduleFactory(owner=setup.user, calendar=setup.calendar, slug="later")
    with tasks_routed_to(f"test-bookings-{uuid.uuid4().hex[:12]}", "calendars.tasks.*") as queue:
        response = Client().post(
            f"/api/v1.0/schedules/{schedule.slug}/bookings/",
            data=json.dumps(
                {"name": "Bob", "email": "bookee@example.net", "start": slot().isoformat()}
            ),
            content_type="application/json",
        )
        assert response.status_code == 201
        booking = Booking.objects.get()
        assert booking.publish_state == PublishState.PENDING
        assert google_fake.requests_for("events.insert") == []
        with worker_thread(queue, shutdown_timeout=20.0):
            synced = wait_until(
                lambda: Booking.objects.get(pk=booking.pk).publish_state == PublishState.PUBLISHED,
                timeout=WORKER_TIMEOUT_SECONDS,
            )
    assert synced
    assert [r.status for r in google_fake.requests_for("events.insert")] == [200]
    assert len(google_fake.outbox) == 1
