"""The publish sweep: a booking whose publish enqueue (or retry) was lost is enqueued again.

Tasks go through the real broker to a queue of the test's own that nothing consumes, so the
test sees what the sweep enqueued and nothing runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from calendars.models import Booking, PublishState
from calendars.services import bookings_publish_sweep
from tests.factories import BookingFactory
from tests.fixtures import TaskQueue

pytestmark = pytest.mark.django_db


def test_sweep_enqueues_the_due_pending_bookings_once_when_their_enqueue_was_lost(
    task_queue: TaskQueue,
) -> None:
    now = timezone.now()
    past, future = now - dt.timedelta(minutes=2), now + dt.timedelta(minutes=2)
    due = BookingFactory(publish_state=PublishState.PENDING, publish_due_at=past)
    BookingFactory(publish_state=PublishState.PENDING, publish_due_at=future)  # grace running
    BookingFactory(publish_state=PublishState.PUBLISHED, publish_due_at=None)
    BookingFactory(publish_state=PublishState.FAILED, publish_due_at=None)
    BookingFactory(  # another worker is publishing it right now
        publish_state=PublishState.PENDING, publish_due_at=past, publish_lease_until=future
    )

    assert bookings_publish_sweep(now=now) == [due.pk]
    assert task_queue.size() == 1
    # Leased for a while: the next sweep does not enqueue it again.
    assert bookings_publish_sweep(now=now + dt.timedelta(seconds=60)) == []
    assert Booking.objects.get(pk=due.pk).publish_due_at == now + dt.timedelta(minutes=5)


def test_sweep_runs_a_constant_number_of_queries_when_many_are_due(
    task_queue: TaskQueue, django_assert_max_num_queries: Any
) -> None:
    past = timezone.now() - dt.timedelta(minutes=2)
    for _ in range(40):
        BookingFactory(publish_state=PublishState.PENDING, publish_due_at=past)

    with django_assert_max_num_queries(2):
        enqueued = bookings_publish_sweep()

    assert len(enqueued) == 40
    assert task_queue.size() == 40
