"""``manage.py retry_deliveries`` and the admin action that does the same."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from invitations.models import Delivery, DeliveryStatus
from tests.factories import UserFactory
from tests.fakes.smtp import SmtpSink
from tests.invitations.test_delivery import make_delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(django_capture_on_commit_callbacks: Any) -> Any:
    """Run the command and what its commits enqueue (tasks run eagerly in the tests)."""

    def _run(*args: str) -> tuple[str, str]:
        out, err = StringIO(), StringIO()
        with django_capture_on_commit_callbacks(execute=True):
            call_command("retry_deliveries", *args, stdout=out, stderr=err)
        return out.getvalue(), err.getvalue()

    return _run


def _status(delivery: Delivery) -> str:
    delivery.refresh_from_db()
    return delivery.status


def test_retry_deliveries_sends_failed_ones_now_when_run_without_options(
    smtp_sink: SmtpSink,
    run: Any,
) -> None:
    later = timezone.now() + dt.timedelta(hours=3)
    failed = make_delivery(
        status=DeliveryStatus.FAILED, attempts=2, next_attempt_at=later, last_error="SMTP 451"
    )
    dead = make_delivery(status=DeliveryStatus.DEAD, attempts=10)

    out, _ = run()

    assert (
        f"retrying delivery {failed.pk}: was failed after 2 attempt(s); last error: SMTP 451" in out
    )
    assert "1 delivery(ies) queued for sending." in out
    assert _status(failed) == DeliveryStatus.SENT
    assert _status(dead) == DeliveryStatus.DEAD
    assert len(smtp_sink.messages) == 1


def test_retry_deliveries_sends_dead_ones_with_a_fresh_budget_when_dead_is_given(
    smtp_sink: SmtpSink,
    run: Any,
) -> None:
    dead = make_delivery(status=DeliveryStatus.DEAD, attempts=10, last_error="SMTP 550")

    out, _ = run("--dead")

    assert f"retrying delivery {dead.pk}: was dead after 10 attempt(s)" in out
    dead.refresh_from_db()
    assert dead.status == DeliveryStatus.SENT
    assert dead.attempts == 1
    assert [mail.message_id for mail in smtp_sink.messages] == [dead.message_id_header]


def test_retry_deliveries_changes_nothing_when_dry_run(smtp_sink: SmtpSink, run: Any) -> None:
    dead = make_delivery(status=DeliveryStatus.DEAD, attempts=10)

    out, _ = run("--dead", "--dry-run")

    assert f"would retry delivery {dead.pk}" in out
    assert "Dry run: 1 delivery(ies) would be retried; nothing changed." in out
    assert _status(dead) == DeliveryStatus.DEAD
    assert smtp_sink.messages == []


def test_retry_deliveries_takes_only_the_given_ids(smtp_sink: SmtpSink, run: Any) -> None:
    chosen = make_delivery(status=DeliveryStatus.DEAD, attempts=3)
    other = make_delivery(status=DeliveryStatus.DEAD, attempts=3)

    run("--id", str(chosen.pk))

    assert _status(chosen) == DeliveryStatus.SENT
    assert _status(other) == DeliveryStatus.DEAD


def test_retry_deliveries_keeps_only_recent_ones_when_since_is_given(
    smtp_sink: SmtpSink, run: Any
) -> None:
    old = make_delivery(status=DeliveryStatus.DEAD, attempts=10)
    Delivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(days=3))
    recent = make_delivery(status=DeliveryStatus.DEAD, attempts=10)

    out, _ = run("--dead", "--since", (timezone.now() - dt.timedelta(days=1)).date().isoformat())

    assert f"delivery {recent.pk}" in out and f"delivery {old.pk}" not in out
    assert _status(recent) == DeliveryStatus.SENT
    assert _status(old) == DeliveryStatus.DEAD


def test_retry_deliveries_refuses_sent_ids_and_exits_non_zero(
    smtp_sink: SmtpSink, run: Any
) -> None:
    sent = make_delivery(status=DeliveryStatus.SENT, attempts=1)

    with pytest.raises(CommandError, match="1 of the requested deliveries were not retried"):
        run("--id", str(sent.pk))

    assert smtp_sink.messages == []
    assert _status(sent) == DeliveryStatus.SENT


def test_retry_deliveries_names_missing_ids_and_exits_non_zero(smtp_sink: SmtpSink) -> None:
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError):
        call_command("retry_deliveries", "--id", "987654", stdout=out, stderr=err)

    assert "delivery 987654 does not exist" in err.getvalue()


@pytest.mark.parametrize("value", ["yesterday", "2026-13-45", "2026-11-20T25:00"])
def test_retry_deliveries_explains_when_since_is_not_a_date(value: str, run: Any) -> None:
    with pytest.raises(CommandError, match="is not a date"):
        run("--since", value)


def test_retry_deliveries_rejects_non_numeric_ids(run: Any) -> None:
    with pytest.raises(CommandError):
        run("--id", "12; DROP TABLE")


def test_retry_deliveries_prints_no_address(smtp_sink: SmtpSink, run: Any) -> None:
    make_delivery(status=DeliveryStatus.DEAD, attempts=10, last_error="SMTP server answered 550")

    out, err = run("--dead")

    assert "@" not in out + err


def test_admin_action_retries_the_selected_deliveries(
    client: Client, smtp_sink: SmtpSink, django_capture_on_commit_callbacks: Any
) -> None:
    admin = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin)
    dead = make_delivery(status=DeliveryStatus.DEAD, attempts=10)
    sent = make_delivery(status=DeliveryStatus.SENT, attempts=1)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:invitations_delivery_changelist"),
            {"action": "retry_now", "_selected_action": [dead.pk, sent.pk]},
            follow=True,
        )

    assert response.status_code == 200
    text = response.content.decode()
    assert f"#{dead.pk}" in text and f"#{sent.pk} (is sent)" in text
    assert _status(dead) == DeliveryStatus.SENT
    assert len(smtp_sink.messages) == 1


def test_admin_lists_deliveries_with_their_state(client: Client) -> None:
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    make_delivery(status=DeliveryStatus.DEAD, attempts=10, last_error="SMTP server answered 550")

    response = client.get(reverse("admin:invitations_delivery_changelist") + "?status=dead")

    assert response.status_code == 200
    assert "SMTP server answered 550" in response.content.decode()
