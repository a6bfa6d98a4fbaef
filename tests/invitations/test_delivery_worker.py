"""Delivery by real Celery workers: acknowledge now, send later; survive a killed worker."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings as django_settings
from django.db import OperationalError, transaction
from django.test import Client
from django.utils import timezone

from calendars.celery import app
from calendars.ical import Method
from invitations.models import Delivery, DeliveryKind, DeliveryStatus
from invitations.services import ItipContent, deliveries_sweep, delivery_create
from tests.fakes.celery_worker import WorkerProcess, database_url, isolated_task_queue, wait_until
from tests.fakes.smtp import SmtpSink
from tests.hostile import HOSTILE_DIR
from tests.scheduling.itip import ATTENDEE, ORGANIZER, itip_body, post_callback

WORKER_TIMEOUT = 60.0


def _status(pk: int) -> str:
    return Delivery.objects.values_list("status", flat=True).get(pk=pk)


def test_callback_is_acknowledged_before_sending_when_a_real_worker_delivers(
    inprocess_celery_worker: str, smtp_sink: SmtpSink, client: Client
) -> None:
    smtp_sink.hold()  # the SMTP server keeps every transaction waiting until released

    response = post_callback(client, itip_body())

    assert response.status_code == 202
    assert smtp_sink.messages == []
    delivery = Delivery.objects.get()
    assert delivery.status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING)
    smtp_sink.release()
    assert smtp_sink.wait_for(1, timeout=WORKER_TIMEOUT)
    assert wait_until(lambda: _status(delivery.pk) == DeliveryStatus.SENT, timeout=10)
    assert smtp_sink.messages[0].message_id == delivery.message_id_header


def _worker_environment(sink: SmtpSink) -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "EMAIL_HOST": sink.host,
            "EMAIL_PORT": str(sink.port),
            "EMAIL_USE_TLS": "false",
            "EMAIL_TIMEOUT": "60",
            "PYTHONUNBUFFERED": "1",
        }
    )
    environment.pop("BREVO_API_KEY", None)
    return environment


@pytest.mark.real_broker
@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_delivery_is_sent_once_after_a_worker_is_killed_mid_send(
    smtp_sink: SmtpSink, client: Client, tmp_path: Path, settings: Any
) -> None:
    smtp_sink.delay_stage = "rcpt"
    smtp_sink.delay_seconds = 45.0  # the first worker hangs inside the SMTP transaction
    with isolated_task_queue() as queue:
        environment = _worker_environment(smtp_sink)
        first = WorkerProcess(queue=queue, environment=environment, log_path=tmp_path / "w1.log")
        second = WorkerProcess(queue=queue, environment=environment, log_path=tmp_path / "w2.log")
        first.start()
        try:
            response = post_callback(client, itip_body())
            assert response.status_code == 202
            delivery = Delivery.objects.get()
            assert smtp_sink.wait_for_rcpt(1, timeout=WORKER_TIMEOUT), first.log()
            assert _status(delivery.pk) == DeliveryStatus.SENDING

            first.kill()
            smtp_sink.delay_seconds = 0
            assert smtp_sink.messages == []
            second.start()
            later = timezone.now() + dt.timedelta(
                seconds=settings.DELIVERY_SENDING_TIMEOUT_SECONDS + 1
            )
            result = deliveries_sweep(now=later)

            assert result.interrupted == 1
            assert result.enqueued == [delivery.pk]
            assert smtp_sink.wait_for(1, timeout=WORKER_TIMEOUT), second.log()
            assert wait_until(lambda: _status(delivery.pk) == DeliveryStatus.SENT, timeout=20)
        finally:
            first.kill()
            second.stop()

    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert [mail.message_id for mail in smtp_sink.messages] == [delivery.message_id_header]


# --- Poison among normal messages (issue 11, build item 3) --------------------------------------


def _poison_store(uid: str) -> Delivery:
    """A message an earlier version accepted (the budgets refuse it at the callback now),
    stored with its delivery; the delivery is enqueued for the worker after the commit."""
    body = (HOSTILE_DIR / "zone-secondly-dtstart.ics").read_bytes()
    body = body.replace(b"UID:zone-secondly-dtstart@hostile.example.org", f"UID:{uid}".encode())
    with transaction.atomic():
        return delivery_create(
            kind=DeliveryKind.ITIP,
            sender=ORGANIZER,
            recipient=ATTENDEE,
            itip=ItipContent(method=Method.REQUEST, body=body, uid=uid),
        )


def _settled(predicate: Any) -> Any:
    """A poll that tolerates SQLite's table lock while the worker thread writes."""

    def poll() -> bool:
        try:
            return bool(predicate())
        except OperationalError:
            return False

    return poll


@pytest.mark.django_db(transaction=True)
def test_poison_is_dead_and_fifty_normal_messages_flow_around_it_when_a_real_worker_sends(
    smtp_sink: SmtpSink, client: Client
) -> None:
    with isolated_task_queue() as queue:
        # The callbacks are accepted (and their tasks queued) first, the poison in the middle;
        # then a real worker takes the queue in order.
        for index in range(50):
            if index == 25:
                poison = _poison_store("poisoned@hostile.example.org")
            response = post_callback(client, itip_body(uid=f"normal-{index}@example.org"))
            assert response.status_code == 202
        with start_worker(
            app,
            pool="solo",
            concurrency=1,
            perform_ping_check=False,
            loglevel="WARNING",
            shutdown_timeout=20.0,
            queues=[queue],
        ):
            assert smtp_sink.wait_for(50, timeout=WORKER_TIMEOUT * 2)
            settled = (DeliveryStatus.SENT, DeliveryStatus.DEAD)
            assert wait_until(
                _settled(lambda: not Delivery.objects.exclude(status__in=settled).exists()),
                timeout=WORKER_TIMEOUT,
            )
            poison.refresh_from_db()
            assert poison.status == DeliveryStatus.DEAD
            assert poison.attempts == 1
            assert "time-zone rule frequency" in poison.last_error
            others = Delivery.objects.exclude(pk=poison.pk)
            assert others.count() == 50
            assert set(others.values_list("status", flat=True)) == {DeliveryStatus.SENT}
            assert len(smtp_sink.messages) == 50

            # The next version of the poisoned event is delivered (without "what changed").
            later = itip_body(
                uid="poisoned@hostile.example.org", sequence=1, summary="Fixed kick-off"
            )
            assert post_callback(client, later).status_code == 202
            assert smtp_sink.wait_for(51, timeout=WORKER_TIMEOUT)
            fixed = Delivery.objects.exclude(pk=poison.pk).filter(
                uid="poisoned@hostile.example.org"
            )
            assert wait_until(
                _settled(lambda: fixed.get().status == DeliveryStatus.SENT), timeout=10
            )
    assert "Fixed kick-off" in str(smtp_sink.messages[-1].message["Subject"])


def test_every_task_runs_under_a_soft_and_a_hard_time_limit_when_configured() -> None:
    from calendars.celery import app

    assert 0 < app.conf.task_soft_time_limit < app.conf.task_time_limit
    for name, task in app.tasks.items():
        if name.startswith("celery."):
            continue
        soft = getattr(task, "soft_time_limit", None) or app.conf.task_soft_time_limit
        hard = getattr(task, "time_limit", None) or app.conf.task_time_limit
        assert 0 < soft < hard, name
