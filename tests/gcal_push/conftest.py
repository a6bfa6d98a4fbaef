"""Fixtures of the Google push tests: a queue of their own on the real broker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kombu import Queue

from calendars.celery import app


class TaskQueue:
    """A broker queue that receives the gcal_push tasks instead of running them eagerly."""

    def __init__(self, name: str) -> None:
        self.name = name

    def size(self) -> int:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            Queue(self.name, channel=channel).declare()
            return int(channel.queue_declare(queue=self.name, passive=True).message_count)

    def purge(self) -> int:
        with app.connection_for_write() as connection:
            return int(Queue(self.name, channel=connection.default_channel).purge() or 0)


@pytest.fixture
def task_queue() -> Iterator[TaskQueue]:
    """Acknowledge now, work later: tasks go through the broker to a queue of this test's own
    (so that no other test's worker takes them), and nothing runs them unless a test starts
    a worker on it."""
    queue = TaskQueue(f"convoke-test-gcal-{uuid.uuid4().hex[:12]}")
    previous_eager = app.conf.task_always_eager
    previous_routes = app.conf.task_routes
    app.conf.update(
        task_always_eager=False, task_routes={"gcal_push.tasks.*": {"queue": queue.name}}
    )
    try:
        yield queue
    finally:
        app.conf.update(task_always_eager=previous_eager, task_routes=previous_routes)
        queue.purge()
