"""The delivery engine: batches, sessions, bulk outcomes, the stored parse, the nudge.

Deliveries are stored here through the scheduling service without running what their commit
enqueues (the test's transaction never commits), then sent by ``deliveries_send`` as a
worker's batch task sends them.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from calendars.celery import app
from calendars.ical import Method
from invitations.models import Delivery, DeliveryStatus
from invitations.services import (
    Outcome,
    batch_inputs,
    deliveries_claim,
    deliveries_nudge,
    deliveries_nudge_clear,
    deliveries_send,
    delivery_email_build,
    outcomes_record,
)
from invitations.services import send as send_module
from invitations.transports import SendResult
from invitations.transports import sessions as sessions_module
from scheduling.models import SchedulingMessage
from scheduling.services import scheduling_message_receive
from tests.fakes.celery_worker import tasks_routed_to
from tests.fakes.messages_api import FakeMessagesApi
from tests.fakes.smtp import SmtpSink
from tests.scheduling.itip import ORGANIZER, itip_body, post_callback

pytestmark = pytest.mark.django_db


def store(count: int, *, start: int = 0, mailbox: bool = False, **body: Any) -> list[Delivery]:
    """``count`` distinct REQUESTs accepted by the callback's service, not sent yet."""
    deliveries = []
    for index in range(start, start + count):
        recipient = f"guest{index}@example.net"
        result = scheduling_message_receive(
            body=itip_body(
                uid=f"event-{index}@dav.example.org",
                attendees=[(recipient, "NEEDS-ACTION")],
                **body,
            ),
            method=Method.REQUEST,
            sender=ORGANIZER,
            recipient=recipient,
            is_mailbox=mailbox,
        )
        deliveries.append(result.delivery)
    return deliveries


def statuses() -> set[str]:
    return set(Delivery.objects.values_list("status", flat=True))


# --- batches and sessions ------------------------------------------------------------------------


def test_pending_deliveries_leave_over_one_smtp_connection_when_the_relay_answers_at_once(
    smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A second session opens when an email has waited SPAWN_AFTER_SECONDS (0.25 s) with
    # every session busy; on a loaded machine our own CPU, not the relay, can make it wait
    # that long. The wait is lengthened so that what is pinned is the reuse itself.
    monkeypatch.setattr(sessions_module, "SPAWN_AFTER_SECONDS", 30.0)
    deliveries = store(20)

    summary = deliveries_send(linger=0.0)

    assert summary.claimed == 20
    assert statuses() == {DeliveryStatus.SENT}
    assert sorted(mail.message_id for mail in smtp_sink.messages) == sorted(
        delivery.message_id_header for delivery in deliveries
    )
    assert smtp_sink.connections == 1
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}


def test_a_batch_costs_the_same_statements_whatever_its_size(
    smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Outcomes recorded once the batch is back: how often they would be recorded while they
    # come back (every 0.1 s), like how many looks find nothing while the emails are out,
    # depends on the machine's speed, not on the batch.
    monkeypatch.setattr(send_module, "RECORD_INTERVAL_SECONDS", 3600.0)
    for start, size in ((0, 5), (5, 30)):
        store(size, start=start)
        with CaptureQueriesContext(connection) as captured:
            summary = deliveries_send(linger=0.0)
        assert summary.claimed == size
        claims = [q for q in captured.captured_queries if "attempts + 1" in q["sql"]]
        # Besides the claims (the one that took them all, then looks that found nothing while
        # the emails were out): the batch's two reads (earlier versions, preferences) and
        # the outcomes, recorded together.
        assert len(claims) == summary.claims
        assert len(captured) - len(claims) == 3
    assert statuses() == {DeliveryStatus.SENT}


def test_a_task_out_of_time_asks_for_the_next_one_when_deliveries_are_left(
    smtp_sink: SmtpSink,
) -> None:
    store(3)

    # No time at all: nothing is claimed, and the next task (run at once in the tests) is
    # asked for, which sends them; without it they would wait for the sweep.
    summary = deliveries_send(seconds=0.0, linger=0.0)

    assert summary.claimed == 0
    assert statuses() == {DeliveryStatus.SENT}
    assert len(smtp_sink.messages) == 3


@pytest.mark.parametrize("size", [1, 5, 40])
def test_a_delivered_batch_is_its_claims_and_three_statements_none_per_email(
    smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    # Outcomes recorded together once the batch is back (not every 0.1 s), so the count is
    # exact: per batch one claim that takes it, the two reads, one outcome statement; the
    # claims that found nothing more are counted apart. Per delivered email: nothing.
    monkeypatch.setattr(send_module, "RECORD_INTERVAL_SECONDS", 3600.0)
    deliveries = store(size)

    with CaptureQueriesContext(connection) as captured:
        summary = deliveries_send(batch_size=100, linger=0.0)

    sql = [q["sql"] for q in captured.captured_queries]
    claims = [q for q in sql if "attempts + 1" in q]
    others = [q for q in sql if "attempts + 1" not in q]
    assert len(claims) == summary.claims
    assert len(others) == 3, others
    assert sum(q.lstrip().upper().startswith("SELECT") for q in others) == 2
    assert sum(q.lstrip().upper().startswith("UPDATE") for q in others) == 1
    assert summary.claimed == size
    assert sorted(mail.message_id for mail in smtp_sink.messages) == sorted(
        d.message_id_header for d in deliveries
    )
    assert statuses() == {DeliveryStatus.SENT}


def test_the_emails_of_a_batch_are_built_from_two_reads(django_assert_num_queries: Any) -> None:
    for start, size in ((0, 3), (3, 25)):
        store(size, start=start)
        claimed = deliveries_claim(limit=100)
        with django_assert_num_queries(2):  # earlier versions, stored preferences
            inputs = batch_inputs(claimed)
        with django_assert_num_queries(0):
            for delivery in claimed:
                delivery_email_build(delivery=delivery, inputs=inputs)


def test_a_claim_is_one_statement_and_takes_the_oldest_pending(
    django_assert_num_queries: Any,
) -> None:
    deliveries = store(5)

    with django_assert_num_queries(1):
        claimed = deliveries_claim(limit=3)

    assert [d.pk for d in claimed] == [d.pk for d in deliveries[:3]]
    assert {d.status for d in claimed} == {DeliveryStatus.SENDING}
    assert {d.attempts for d in claimed} == {1}
    assert all(d.prepared for d in claimed)  # complete rows, what the worker renders from
    assert [d.pk for d in deliveries_claim(limit=10)] == [d.pk for d in deliveries[3:]]
    assert deliveries_claim(limit=10) == []


def test_outcomes_of_a_whole_batch_are_one_statement(django_assert_num_queries: Any) -> None:
    store(12)
    claimed = deliveries_claim(limit=12)

    with django_assert_num_queries(1):
        outcomes_record([Outcome(delivery, result=SendResult()) for delivery in claimed])

    assert statuses() == {DeliveryStatus.SENT}


def test_every_mailer_route_is_sent_through_the_one_mailer_pool(
    settings: Any, tmp_path: Path
) -> None:
    # The embedded default: the mailer writes files and its deliveries are labelled "file".
    settings.MAIL_ROUTE = "file"
    settings.MAILERS = {
        "default": {
            "BACKEND": "calendars.mail_files.EmailBackend",
            "OPTIONS": {"file_path": str(tmp_path)},
        }
    }
    deliveries = store(3)
    assert {d.transport for d in deliveries} == {"file"}

    summary = deliveries_send(linger=0.0)

    assert statuses() == {DeliveryStatus.SENT}
    assert len(list(tmp_path.glob("*.eml"))) == 3
    assert set(summary.peak_sessions) == {"mailer"}


def test_a_slow_relay_is_waited_on_by_at_most_the_configured_sessions_at_once(
    smtp_sink: SmtpSink, settings: Any
) -> None:
    settings.EMAIL_MAX_SESSIONS = 4
    smtp_sink.delay_seconds = 0.4  # each message, at the end of DATA
    store(12)

    summary = deliveries_send(linger=0.0)

    assert statuses() == {DeliveryStatus.SENT}
    assert len(smtp_sink.messages) == 12
    assert 2 <= smtp_sink.peak_sessions <= 4
    assert summary.peak_sessions["mailer"] <= 4


def test_the_messages_api_is_called_by_at_most_the_configured_connections_at_once(
    messages_api: FakeMessagesApi, settings: Any
) -> None:
    settings.MESSAGES_API_MAX_CONNECTIONS = 3
    messages_api.add_mailbox(ORGANIZER)
    messages_api.slow_submits(0.3)
    store(9, mailbox=True)

    deliveries_send(linger=0.0)

    assert statuses() == {DeliveryStatus.SENT}
    assert len(messages_api.submissions) == 9
    assert 2 <= messages_api.peak_submitting <= 3
    assert all(d.provider_message_id for d in Delivery.objects.all())


def test_a_render_failure_in_a_batch_is_dead_at_once_and_the_others_leave(
    smtp_sink: SmtpSink,
) -> None:
    good = store(6)
    poison = good[3]
    # An earlier version's stored content that cannot be rendered (no stored parse either).
    Delivery.objects.filter(pk=poison.pk).update(body=b"BEGIN:VCALENDAR\r\n", prepared=None)

    deliveries_send(linger=0.0)

    poison.refresh_from_db()
    assert poison.status == DeliveryStatus.DEAD
    assert poison.attempts == 1
    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 5
    assert len(smtp_sink.messages) == 5


def test_a_transient_failure_in_a_batch_leaves_that_delivery_to_its_retry(
    smtp_sink: SmtpSink,
) -> None:
    store(4)
    smtp_sink.refuse_next(1, code=451)

    deliveries_send(linger=0.0)

    assert Delivery.objects.filter(status=DeliveryStatus.SENT).count() == 3
    [failed] = Delivery.objects.filter(status=DeliveryStatus.FAILED)
    assert "451" in failed.last_error
    assert failed.next_attempt_at is not None


# --- the callback's parse, kept -------------------------------------------------------------------


def test_the_worker_renders_from_the_callbacks_parse_without_reading_the_body_again(
    smtp_sink: SmtpSink,
) -> None:
    [delivery] = store(1, summary="Budget review")
    assert delivery.prepared
    # Were the body parsed again, this could not be sent.
    Delivery.objects.filter(pk=delivery.pk).update(body=b"not a calendar")

    deliveries_send(linger=0.0)

    [mail] = smtp_sink.messages
    assert "Budget review" in str(mail.message["Subject"])
    calendar = next(p for p in mail.message.walk() if p.get_content_type() == "text/calendar")
    assert "SUMMARY:Budget review" in calendar.get_content()
    assert calendar.get_param("method") == "REQUEST"


def test_the_body_is_parsed_when_the_itip_setting_changed_since_the_callback(
    smtp_sink: SmtpSink, settings: Any
) -> None:
    settings.CALENDAR_ITIP_ENABLED = True
    store(1)
    settings.CALENDAR_ITIP_ENABLED = False

    deliveries_send(linger=0.0)

    [mail] = smtp_sink.messages
    calendar = next(p for p in mail.message.walk() if p.get_content_type() == "text/calendar")
    assert calendar.get_param("method") is None
    assert "METHOD" not in calendar.get_content()


def test_an_update_says_what_changed_when_its_earlier_version_is_in_the_same_batch(
    smtp_sink: SmtpSink,
) -> None:
    store(1, summary="Kick-off")
    store(1, summary="Kick-off, new room", sequence=1)

    deliveries_send(linger=0.0)

    first, second = sorted(smtp_sink.messages, key=lambda mail: str(mail.message["Subject"]))
    update = second if "new room" in str(second.message["Subject"]) else first
    text = update.message.get_body(("plain",)).get_content()
    assert "Kick-off" in text  # the earlier title is named in the change list


def _subjects(sink: SmtpSink) -> list[str]:
    return sorted(str(mail.message["Subject"]) for mail in sink.messages)


def test_a_batch_counts_an_earlier_request_only_when_it_reached_the_recipient(
    smtp_sink: SmtpSink,
) -> None:
    # The batch's reads follow invitations.selectors.previous_request_body: the last REQUEST
    # to that recipient for the UID, whichever occurrence, not counting dead or skipped ones.
    [dead] = store(1, summary="Lost")
    Delivery.objects.filter(pk=dead.pk).update(status=DeliveryStatus.DEAD)
    store(1, start=1, summary="Other")  # another event, another recipient
    store(1, summary="Lost again", sequence=1)  # the same event and recipient as the dead one

    deliveries_send(linger=0.0)

    assert _subjects(smtp_sink) == ["Invitation: Lost again", "Invitation: Other"]


def test_a_batch_makes_an_update_of_a_request_whose_earlier_version_cannot_be_read(
    smtp_sink: SmtpSink,
) -> None:
    [earlier] = store(1, summary="Kick-off")
    Delivery.objects.filter(pk=earlier.pk).update(
        status=DeliveryStatus.SENT, body=b"not a calendar", prepared=None
    )
    store(1, summary="Kick-off, moved", sequence=1)

    deliveries_send(linger=0.0)

    assert _subjects(smtp_sink) == ["Updated invitation: Kick-off, moved"]


# --- exactly once ---------------------------------------------------------------------------------


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_sending_at_once_send_each_delivery_once(smtp_sink: SmtpSink) -> None:
    smtp_sink.delay_seconds = 0.02
    deliveries = store(40)
    barrier = threading.Barrier(2)

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            deliveries_send(batch_size=7, linger=0.0)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    sent_ids = [mail.message_id for mail in smtp_sink.messages]
    assert sorted(sent_ids) == sorted(d.message_id_header for d in deliveries)
    assert statuses() == {DeliveryStatus.SENT}
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}


# --- the nudge ------------------------------------------------------------------------------------


def _queued(queue: str) -> int:
    with app.connection_for_write() as broker:
        return int(broker.SimpleQueue(queue).qsize())


def test_one_task_is_queued_for_many_new_deliveries_when_the_cache_is_shared(
    settings: Any, tmp_path: Path
) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }
    with tasks_routed_to(f"test-nudge-{uuid.uuid4().hex[:12]}", "invitations.tasks.*") as queue:
        try:
            for _ in range(5):
                deliveries_nudge()
            assert _queued(queue) == 1
            deliveries_nudge_clear()  # the task starts
            deliveries_nudge()
            assert _queued(queue) == 2
        finally:
            with app.connection_for_write() as broker:
                broker.SimpleQueue(queue).clear()


def test_a_callback_is_sent_by_the_task_its_commit_nudges(
    client: Client, smtp_sink: SmtpSink, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = post_callback(client, itip_body())

    assert response.status_code == 202
    assert statuses() == {DeliveryStatus.SENT}
    assert len(smtp_sink.messages) == 1


def test_a_callback_is_one_statement_or_two_inserts_in_one_transaction(
    client: Client, django_assert_num_queries: Any
) -> None:
    # In a test the callback runs inside the test's transaction, so its store is a
    # savepoint: on PostgreSQL SAVEPOINT, one INSERT of both rows, RELEASE; elsewhere
    # SAVEPOINT, the delivery, the message, RELEASE.
    postgres = connection.vendor == "postgresql"
    with django_assert_num_queries(3 if postgres else 4) as captured:
        response = post_callback(client, itip_body())

    assert response.status_code == 202
    inserts = [
        q["sql"] for q in captured.captured_queries if q["sql"].startswith(("INSERT", "WITH"))
    ]
    assert len(inserts) == (1 if postgres else 2)
    message = SchedulingMessage.objects.select_related("delivery").get()
    assert message.delivery.body == itip_body()


@pytest.mark.django_db(transaction=True)
def test_an_accepted_callback_is_one_commit(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real transaction (no test savepoint): the callback's only commit holds the delivery
    # and the message, and nothing else is written or read. The nudge its commit runs is
    # tested above; here it is left out so that only the callback's statements are counted.
    # PostgreSQL: one statement in autocommit (its own transaction, no BEGIN or COMMIT sent);
    # elsewhere: two INSERTs and a COMMIT.
    monkeypatch.setattr("scheduling.services.deliveries_nudge_on_commit", lambda: None)
    database = connections["default"]

    with CaptureQueriesContext(database) as captured:
        response = post_callback(client, itip_body())

    assert response.status_code == 202
    # Django logs the transaction's end (and SQLite's BEGIN IMMEDIATE) among the statements.
    statements = [q["sql"].split()[0].upper() for q in captured.captured_queries]
    expected = ["WITH"] if database.vendor == "postgresql" else ["INSERT", "INSERT", "COMMIT"]
    assert [s for s in statements if s != "BEGIN"] == expected, statements
    assert statements.count("BEGIN") <= 1
    assert Delivery.objects.count() == 1
