"""Delivery by real Celery workers: acknowledge now, send later; survive a killed worker."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from invitations.models import Delivery, DeliveryStatus
from invitations.services import deliveries_sweep
from tests.fakes.celery_worker import WorkerProcess, database_url, isolated_task_queue, wait_until
from tests.fakes.smtp import SmtpSink
from tests.scheduling.itip import itip_body, post_callback

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
