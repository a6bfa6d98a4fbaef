"""The delivery nudge's process memo: commits close together ask the shared cache once, and
no delivery waits for the sweep (invitations.services.nudge)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from calendars.celery import app
from invitations.models import Delivery, DeliveryStatus
from invitations.services import (
    deliveries_nudge,
    deliveries_nudge_clear,
    deliveries_nudge_on_commit,
)
from invitations.services import nudge as nudge_module
from invitations.services import send as send_module
from tests.fakes import counting_cache
from tests.fakes.celery_worker import tasks_routed_to, wait_until
from tests.fakes.smtp import SmtpSink
from tests.scheduling.itip import itip_body, post_callback

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared_cache(settings: Any, tmp_path: Path) -> Iterator[None]:
    """A cache the processes share (Redis in production), counting its calls."""
    settings.CACHES = {
        "default": {
            "BACKEND": "tests.fakes.counting_cache.CountingFileCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }
    counting_cache.CALLS.clear()
    yield
    counting_cache.CALLS.clear()


@pytest.fixture
def task_queue() -> Iterator[str]:
    """Our tasks published for real (not run eagerly) to a queue of this test's own."""
    with tasks_routed_to(f"test-nudge-{uuid.uuid4().hex[:12]}", "invitations.tasks.*") as queue:
        try:
            yield queue
        finally:
            with app.connection_for_write() as broker:
                broker.SimpleQueue(queue).clear()


@pytest.fixture(name="commit")
def commit_fixture(django_capture_on_commit_callbacks: Any) -> Any:
    """A commit that stored deliveries: runs what ``deliveries_nudge_on_commit`` registered."""

    def run() -> None:
        with django_capture_on_commit_callbacks(execute=True):
            deliveries_nudge_on_commit()

    return run


def _queued(queue: str) -> int:
    with app.connection_for_write() as broker:
        return int(broker.SimpleQueue(queue).qsize())


def test_the_memo_is_shorter_than_a_started_tasks_linger() -> None:
    # The memo's safety: a task that started after the moment remembered still claims for
    # LINGER_SECONDS, so whatever commits within the memo's window is claimed by it.
    assert 0 < nudge_module.NUDGE_RECENT_SECONDS <= send_module.LINGER_SECONDS / 2


def test_commits_close_together_ask_the_shared_cache_once_and_queue_one_task(
    shared_cache: None, task_queue: str, commit: Any
) -> None:
    for _ in range(20):
        commit()

    assert counting_cache.CALLS["add"] == 1
    assert _queued(task_queue) == 1


def test_a_commit_after_the_memo_expired_asks_the_shared_cache_again(
    shared_cache: None, task_queue: str, commit: Any
) -> None:
    commit()
    time.sleep(nudge_module.NUDGE_RECENT_SECONDS + 0.05)
    commit()

    # The key is still there (the task has not started): no second task.
    assert counting_cache.CALLS["add"] == 2
    assert _queued(task_queue) == 1


def test_a_commit_after_a_task_started_here_queues_the_next_task_at_once(
    shared_cache: None, task_queue: str, commit: Any
) -> None:
    commit()
    deliveries_nudge_clear()  # a task starts in this process
    commit()

    assert counting_cache.CALLS["add"] == 2
    assert _queued(task_queue) == 2


def test_a_task_asking_for_the_next_one_always_asks_the_shared_cache(
    shared_cache: None, task_queue: str, commit: Any
) -> None:
    commit()
    deliveries_nudge()  # what a task out of time calls (invitations.services.send)

    assert counting_cache.CALLS["add"] == 2
    assert _queued(task_queue) == 1


def test_commits_close_together_without_a_shared_cache_queue_one_task(
    task_queue: str, commit: Any
) -> None:
    for _ in range(5):
        commit()

    assert _queued(task_queue) == 1


def test_callbacks_close_together_are_each_sent_at_once_when_tasks_run_eagerly(
    client: Client, smtp_sink: SmtpSink, django_capture_on_commit_callbacks: Any
) -> None:
    # The eager task runs in this process, lingers for nothing, and forgets the memo as it
    # starts: the second callback's commit sends a task of its own.
    for index in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            response = post_callback(client, itip_body(uid=f"event-{index}@dav.example.org"))
        assert response.status_code == 202

    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT}
    assert len(smtp_sink.messages) == 2


def test_a_delivery_committed_without_a_nudge_while_a_task_lingers_is_sent_by_that_task(
    inprocess_celery_worker: str,
    smtp_sink: SmtpSink,
    client: Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the memo relies on: a delivery committed while a started task is still claiming
    # (within LINGER_SECONDS of its last claim that found work) needs no task of its own.
    response = post_callback(client, itip_body(uid="first@dav.example.org"))
    assert response.status_code == 202
    assert smtp_sink.wait_for(1, timeout=30)

    # The second commit nudges nothing, as when this process's memo holds.
    monkeypatch.setattr("scheduling.services.deliveries_nudge_on_commit", lambda: None)
    response = post_callback(client, itip_body(uid="second@dav.example.org"))
    assert response.status_code == 202

    assert smtp_sink.wait_for(2, timeout=send_module.LINGER_SECONDS * 5)
    assert wait_until(
        lambda: set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.SENT},
        timeout=10,
    )
