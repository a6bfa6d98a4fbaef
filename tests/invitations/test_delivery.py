"""Delivery of stored messages: claim, render, send, classify, back off, sweep (docs/design.md 1.1).

Tasks run eagerly here (tests/settings.py): the sweep's enqueue runs the send at once, so
each sweep below is one more attempt. Retries are made due at once by a zero backoff base
unless a test is about the backoff itself.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from invitations.models import Delivery, DeliveryKind, DeliveryStatus, DeliveryTransport
from invitations.services import (
    DeliveryOutcome,
    deliveries_sweep,
    delivery_retry_delay,
    delivery_send,
    message_id_new,
)
from tests.fakes.messages_api import FakeMessagesApi
from tests.fakes.smtp import SmtpSink
from tests.scheduling.itip import ATTENDEE, ORGANIZER, itip_body, post_callback

pytestmark = pytest.mark.django_db

MAX_SWEEPS = 15


@pytest.fixture
def post(client: Client, django_capture_on_commit_callbacks: Any) -> Any:
    """POST a callback and run what its commit enqueues (the test's transaction never
    commits, so on-commit callbacks are captured and run here)."""

    def _post(body: bytes, **options: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return post_callback(client, body, **options)

    return _post


def make_delivery(
    *,
    transport: str = DeliveryTransport.SMTP,
    status: str = DeliveryStatus.PENDING,
    body: bytes | None = None,
    **fields: Any,
) -> Delivery:
    """A delivery of a calendar message, created without enqueuing anything."""
    body = body or itip_body(uid=f"event-{message_id_new()[1:9]}@dav.example.org")
    return Delivery.objects.create(
        kind=DeliveryKind.ITIP,
        method="REQUEST",
        body=body,
        uid="event@dav.example.org",
        sender=ORGANIZER,
        recipient=ATTENDEE,
        transport=transport,
        status=status,
        message_id_header=message_id_new(),
        **fields,
    )


def sweep_until_settled(delivery: Delivery) -> Delivery:
    """Run the periodic sweep (bounded) until the delivery is sent or dead."""
    for _ in range(MAX_SWEEPS):
        delivery.refresh_from_db()
        if delivery.status in (DeliveryStatus.SENT, DeliveryStatus.DEAD):
            return delivery
        deliveries_sweep(now=timezone.now() + dt.timedelta(seconds=1))
    delivery.refresh_from_db()
    return delivery


# --- SMTP: recovery after transient failures ------------------------------------------------------


@pytest.mark.parametrize("code", [421, 451])
def test_delivery_is_sent_once_with_one_message_id_when_smtp_refuses_for_a_while(
    post: Any, smtp_sink: SmtpSink, quick_retries: None, code: int
) -> None:
    smtp_sink.refuse_next(3, code=code)

    response = post(itip_body())

    assert response.status_code == 202
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.FAILED
    assert str(code) in delivery.last_error
    delivery = sweep_until_settled(delivery)
    assert delivery.status == DeliveryStatus.SENT
    assert delivery.attempts == 4
    assert delivery.last_error == ""
    assert delivery.sent_at is not None
    assert len(smtp_sink.messages) == 1
    assert smtp_sink.messages[0].rcpt_tos == (ATTENDEE,)
    assert smtp_sink.attempts == [delivery.message_id_header] * 4


def test_delivery_is_sent_once_when_connection_drops_mid_data(
    post: Any, smtp_sink: SmtpSink, quick_retries: None
) -> None:
    smtp_sink.drop_next(2)

    post(itip_body())
    delivery = sweep_until_settled(Delivery.objects.get())

    assert delivery.status == DeliveryStatus.SENT
    assert delivery.attempts == 3
    assert [mail.message_id for mail in smtp_sink.messages] == [delivery.message_id_header]
    assert smtp_sink.attempts == [delivery.message_id_header] * 3


def test_delivery_is_sent_when_smtp_server_comes_back(
    smtp_sink: SmtpSink, quick_retries: None, settings: Any, unused_port: int
) -> None:
    delivery = make_delivery()
    working = settings.MAILERS
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": unused_port, "timeout": 2},
        }
    }

    assert delivery_send(delivery_id=delivery.pk) == DeliveryOutcome.RETRY
    settings.MAILERS = working
    delivery = sweep_until_settled(delivery)

    assert delivery.status == DeliveryStatus.SENT
    assert len(smtp_sink.messages) == 1


# --- permanent failures and the cap ---------------------------------------------------------------


def test_delivery_is_dead_at_once_when_recipient_is_refused_with_5xx(
    post: Any, smtp_sink: SmtpSink, quick_retries: None
) -> None:
    smtp_sink.refuse_recipients = {ATTENDEE}

    post(itip_body())
    delivery = Delivery.objects.get()
    result = deliveries_sweep(now=timezone.now() + dt.timedelta(days=2))

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DEAD
    assert delivery.attempts == 1
    assert "550" in delivery.last_error and ATTENDEE not in delivery.last_error
    assert result.enqueued == []
    assert smtp_sink.messages == []


def test_delivery_is_dead_after_the_last_attempt_when_failures_persist(
    post: Any, smtp_sink: SmtpSink, quick_retries: None, settings: Any
) -> None:
    settings.DELIVERY_MAX_ATTEMPTS = 4
    smtp_sink.refuse_next(100, code=451)

    post(itip_body())
    delivery = sweep_until_settled(Delivery.objects.get())

    assert delivery.status == DeliveryStatus.DEAD
    assert delivery.attempts == 4
    assert len(smtp_sink.attempts) == 4
    assert smtp_sink.messages == []


def test_delivery_waits_for_its_backoff_when_a_transient_failure_happened(
    smtp_sink: SmtpSink, settings: Any
) -> None:
    settings.DELIVERY_RETRY_BASE_SECONDS = 300
    settings.DELIVERY_RETRY_JITTER = 0.2
    smtp_sink.refuse_next(1, code=451)
    delivery = make_delivery()

    before = timezone.now()
    assert delivery_send(delivery_id=delivery.pk) == DeliveryOutcome.RETRY
    delivery.refresh_from_db()

    assert delivery.next_attempt_at is not None
    wait = (delivery.next_attempt_at - before).total_seconds()
    assert 240 <= wait <= 361
    assert deliveries_sweep(now=before + dt.timedelta(seconds=200)).enqueued == []
    assert deliveries_sweep(now=before + dt.timedelta(seconds=400)).enqueued == [delivery.pk]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT


def test_retry_delay_doubles_up_to_the_cap_and_spans_about_a_day(settings: Any) -> None:
    settings.DELIVERY_RETRY_JITTER = 0
    delays = [
        delivery_retry_delay(attempt=n).total_seconds()
        for n in range(1, settings.DELIVERY_MAX_ATTEMPTS)
    ]

    assert delays[:3] == [300, 600, 1200]
    assert max(delays) == settings.DELIVERY_RETRY_MAX_SECONDS
    assert 20 * 3600 <= sum(delays) <= 26 * 3600


def test_retry_delay_is_spread_by_jitter_within_bounds(settings: Any) -> None:
    settings.DELIVERY_RETRY_JITTER = 0.2
    delays = {delivery_retry_delay(attempt=3).total_seconds() for _ in range(200)}

    assert len(delays) > 100
    assert all(960 <= delay <= 1440 for delay in delays)


# --- claims ---------------------------------------------------------------------------------------


def test_delivery_send_skips_when_delivery_is_already_sent(smtp_sink: SmtpSink) -> None:
    delivery = make_delivery()

    assert delivery_send(delivery_id=delivery.pk) == DeliveryOutcome.SENT
    assert delivery_send(delivery_id=delivery.pk) == DeliveryOutcome.SKIPPED

    delivery.refresh_from_db()
    assert delivery.attempts == 1
    assert len(smtp_sink.messages) == 1


def test_delivery_send_skips_when_another_worker_is_sending(smtp_sink: SmtpSink) -> None:
    delivery = make_delivery(status=DeliveryStatus.SENDING, claimed_at=timezone.now(), attempts=1)

    assert delivery_send(delivery_id=delivery.pk) == DeliveryOutcome.SKIPPED
    assert smtp_sink.messages == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_delivery_is_sent_once_when_two_workers_claim_it_at_once(smtp_sink: SmtpSink) -> None:
    smtp_sink.delay_seconds = 0.3
    delivery = make_delivery()
    workers = 4
    barrier = threading.Barrier(workers)
    outcomes: list[DeliveryOutcome] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            barrier.wait(timeout=10)
            outcome = delivery_send(delivery_id=delivery.pk)
            with lock:
                outcomes.append(outcome)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(outcomes) == sorted([DeliveryOutcome.SENT] + [DeliveryOutcome.SKIPPED] * 3)
    assert len(smtp_sink.messages) == 1


def test_delivery_send_stays_within_a_fixed_number_of_queries(
    smtp_sink: SmtpSink, django_assert_max_num_queries: Any
) -> None:
    delivery = make_delivery()

    with django_assert_max_num_queries(12):  # 5 of ours, the rest the metric counter
        assert delivery_send(delivery_id=delivery.pk) == DeliveryOutcome.SENT


# --- the sweep ------------------------------------------------------------------------------------


def test_sweep_resends_when_a_worker_died_while_sending(smtp_sink: SmtpSink) -> None:
    hour_ago = timezone.now() - dt.timedelta(hours=1)
    stuck = make_delivery(status=DeliveryStatus.SENDING, claimed_at=hour_ago, attempts=1)
    busy = make_delivery(status=DeliveryStatus.SENDING, claimed_at=timezone.now(), attempts=1)

    result = deliveries_sweep()

    assert result.interrupted == 1
    assert result.enqueued == [stuck.pk]
    stuck.refresh_from_db()
    busy.refresh_from_db()
    assert stuck.status == DeliveryStatus.SENT
    assert stuck.attempts == 2
    assert busy.status == DeliveryStatus.SENDING
    assert [mail.message_id for mail in smtp_sink.messages] == [stuck.message_id_header]


def test_sweep_marks_dead_when_the_last_attempt_was_interrupted(
    smtp_sink: SmtpSink, settings: Any
) -> None:
    stuck = make_delivery(
        status=DeliveryStatus.SENDING,
        claimed_at=timezone.now() - dt.timedelta(hours=1),
        attempts=settings.DELIVERY_MAX_ATTEMPTS,
    )

    result = deliveries_sweep()

    stuck.refresh_from_db()
    assert result.interrupted == 1
    assert stuck.status == DeliveryStatus.DEAD
    assert "interrupted" in stuck.last_error
    assert smtp_sink.messages == []


def test_sweep_sends_pending_delivery_when_its_enqueue_was_lost(smtp_sink: SmtpSink) -> None:
    lost = make_delivery(next_attempt_at=timezone.now() - dt.timedelta(minutes=5))
    fresh = make_delivery(next_attempt_at=timezone.now() + dt.timedelta(seconds=60))

    result = deliveries_sweep()

    assert result.enqueued == [lost.pk]
    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert lost.status == DeliveryStatus.SENT
    assert fresh.status == DeliveryStatus.PENDING
    assert len(smtp_sink.messages) == 1


def test_sweep_leaves_sent_and_dead_deliveries_alone(smtp_sink: SmtpSink) -> None:
    past = timezone.now() - dt.timedelta(days=1)
    make_delivery(status=DeliveryStatus.SENT, next_attempt_at=past, attempts=1)
    make_delivery(status=DeliveryStatus.DEAD, next_attempt_at=past, attempts=10)

    result = deliveries_sweep()

    assert (result.interrupted, result.enqueued) == (0, [])
    assert smtp_sink.messages == []


def test_sweep_is_scheduled_periodically_by_celery_beat(settings: Any) -> None:
    from calendars.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["invitations-deliveries-sweep"]
    assert entry["task"] == "invitations.tasks.deliveries_sweep_task"
    assert entry["schedule"] == settings.DELIVERY_SWEEP_INTERVAL_SECONDS
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks


# --- unexpected errors ----------------------------------------------------------------------------


def test_delivery_task_records_a_failure_when_the_mailer_crashes(
    settings: Any, quick_retries: None
) -> None:
    from invitations.tasks import delivery_send_task

    settings.MAILERS = {"default": {"BACKEND": "tests.fakes.smtp.CrashingEmailBackend"}}
    delivery = make_delivery()

    assert delivery_send_task(delivery.pk) == "error"

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error.startswith("internal error RuntimeError at ")
    assert "@" not in delivery.last_error


# --- the Messages route ---------------------------------------------------------------------------


def test_callback_is_submitted_through_messages_when_sender_has_a_mailbox(
    post: Any, messages_api: FakeMessagesApi, smtp_sink: SmtpSink
) -> None:
    mailbox_id = messages_api.add_mailbox(ORGANIZER)

    response = post(itip_body(), is_mailbox="true")

    assert response.status_code == 202
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SENT, delivery.last_error
    assert delivery.provider_message_id
    [submission] = messages_api.submissions
    assert submission.mailbox_id == mailbox_id
    assert submission.rcpt_to == (ATTENDEE,)
    assert submission.message["Message-ID"] == delivery.message_id_header
    assert submission.message["From"].addresses[0].addr_spec == ORGANIZER
    assert smtp_sink.messages == []


def test_messages_delivery_is_retried_when_api_answers_503_then_202(
    post: Any, messages_api: FakeMessagesApi, quick_retries: None
) -> None:
    messages_api.add_mailbox(ORGANIZER)
    messages_api.fail_next(503, count=2)

    post(itip_body(), is_mailbox="true")
    delivery = sweep_until_settled(Delivery.objects.get())

    assert delivery.status == DeliveryStatus.SENT
    assert delivery.attempts == 3
    assert len(messages_api.submissions) == 1


def test_messages_delivery_is_dead_without_smtp_fallback_when_api_refuses(
    post: Any, messages_api: FakeMessagesApi, smtp_sink: SmtpSink, quick_retries: None
) -> None:
    messages_api.add_mailbox(ORGANIZER)
    messages_api.fail_next(403)

    post(itip_body(), is_mailbox="true")
    delivery = sweep_until_settled(Delivery.objects.get())

    assert delivery.status == DeliveryStatus.DEAD
    assert "403" in delivery.last_error
    assert messages_api.submissions == []
    assert smtp_sink.messages == []


def test_delivery_sends_one_email_when_the_event_has_10000_attendees(
    post: Any, smtp_sink: SmtpSink
) -> None:
    attendees = [(f"guest{n}@example.net", "NEEDS-ACTION") for n in range(10_000)]

    response = post(itip_body(attendees=attendees), recipient="guest42@example.net")

    assert response.status_code == 202
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SENT, delivery.last_error
    [mail] = smtp_sink.messages
    assert mail.rcpt_tos == ("guest42@example.net",)


def test_metrics_count_deliveries_by_transport_and_status(client: Client) -> None:
    make_delivery(status=DeliveryStatus.DEAD, attempts=10)
    make_delivery(status=DeliveryStatus.DEAD, attempts=10)
    make_delivery(transport=DeliveryTransport.MESSAGES, status=DeliveryStatus.SENT, attempts=1)

    response = client.get("/metrics")

    text = response.content.decode()
    assert 'convoke_deliveries_by_state{status="dead",transport="smtp"} 2.0' in text
    assert 'convoke_deliveries_by_state{status="sent",transport="messages"} 1.0' in text
