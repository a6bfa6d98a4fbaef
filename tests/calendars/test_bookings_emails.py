"""The bookings' emails go through the outbox like every email (docs/architecture.md).

Over real SMTP (aiosmtpd): stored with the booking, sent after the commit, retried by the
outbox's sweep under its retry policy, dead-lettered, shown in the deliveries admin and the
booking's timeline; a broker that refuses the task after the booking committed costs
neither the booking nor the email.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from calendars import services
from calendars.celery import app
from calendars.models import Booking, BookingStatus, Schedule
from invitations.models import Delivery, DeliveryKind, DeliveryStatus
from invitations.services import deliveries_sweep
from tests.factories import CalendarFactory, ScheduleFactory, UserFactory
from tests.fakes.smtp import SmtpSink
from tests.fixtures import Commit

pytestmark = pytest.mark.django_db

BOOKEE = "bob@example.net"


@pytest.fixture
def schedule(settings: Any) -> Schedule:
    owner = UserFactory(email="owner@example.org", full_name="Olive Owner")
    calendar = CalendarFactory(owner=owner)
    return ScheduleFactory(owner=owner, calendar=calendar, slug="emails", slot_minutes=30)


def _slot() -> dt.datetime:
    return (timezone.now() + dt.timedelta(days=3)).replace(second=0, microsecond=0)


def _request(commit: Commit, schedule: Schedule, name: str = "Bob <b> & Co") -> Booking:
    with commit():
        booking = services.booking_request(
            schedule_id=schedule.pk, attendee_name=name, attendee_email=BOOKEE, start=_slot()
        )
    return booking


def _sweep_until_settled(delivery: Delivery, rounds: int = 12) -> Delivery:
    for _ in range(rounds):
        delivery.refresh_from_db()
        if delivery.status not in (DeliveryStatus.PENDING, DeliveryStatus.FAILED):
            break
        deliveries_sweep(now=timezone.now() + dt.timedelta(seconds=1))
    delivery.refresh_from_db()
    return delivery


def test_subscriber_email_is_retried_and_sent_once_when_smtp_defers(
    smtp_sink: SmtpSink, commit: Commit, schedule: Schedule, quick_retries: None
) -> None:
    smtp_sink.refuse_next(2, code=421)
    booking = _request(commit, schedule)

    delivery = _sweep_until_settled(Delivery.objects.get(booking=booking))

    assert (delivery.kind, delivery.status, delivery.attempts) == (
        DeliveryKind.BOOKING_REQUEST,
        DeliveryStatus.SENT,
        3,
    )
    [received] = smtp_sink.messages
    assert received.rcpt_tos == ("owner@example.org",)
    # Every attempt carried the same Message-ID, so a client folds duplicates.
    assert smtp_sink.attempts == [received.message_id] * 3
    assert (
        received.message_id
        == delivery.message_id_header
        == f"<booking.{booking.pk}.request@localhost>"
    )
    message = received.message
    assert message["Reply-To"] == BOOKEE
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "Bob &lt;b&gt; &amp; Co" in html and "/bookings/decide/?token=" in html
    # One renderer for every email: the base template is written with its CSS inlined.
    assert "<style" not in html and 'class="button button-accept"' in html
    assert 'style="' in html


def test_subscriber_email_is_dead_at_once_when_smtp_refuses_for_good(
    smtp_sink: SmtpSink, commit: Commit, schedule: Schedule, quick_retries: None
) -> None:
    smtp_sink.refuse_next(1, code=554)
    booking = _request(commit, schedule)

    delivery = _sweep_until_settled(Delivery.objects.get(booking=booking))

    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DEAD, 1)
    assert len(smtp_sink.attempts) == 1 and smtp_sink.messages == []


def test_subscriber_email_retries_are_bounded_when_smtp_keeps_deferring(
    smtp_sink: SmtpSink,
    commit: Commit,
    schedule: Schedule,
    quick_retries: None,
    settings: Any,
) -> None:
    settings.DELIVERY_MAX_ATTEMPTS = 4
    smtp_sink.refuse_next(10, code=451)
    booking = _request(commit, schedule)

    delivery = _sweep_until_settled(Delivery.objects.get(booking=booking))

    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DEAD, 4)
    assert len(smtp_sink.attempts) == 4 and smtp_sink.messages == []


def test_request_email_is_skipped_when_the_booking_was_decided_before_it_left(
    smtp_sink: SmtpSink, commit: Commit, schedule: Schedule, quick_retries: None
) -> None:
    smtp_sink.refuse_next(1, code=421)
    booking = _request(commit, schedule)
    Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.DECLINED)

    delivery = _sweep_until_settled(Delivery.objects.get(booking=booking))

    assert delivery.status == DeliveryStatus.SKIPPED
    assert "decided" in delivery.last_error
    assert smtp_sink.messages == []


def test_booking_answers_201_and_the_sweep_sends_its_email_when_the_broker_fails_after_commit(
    client: Client,
    smtp_sink: SmtpSink,
    commit: Commit,
    schedule: Schedule,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broker_down(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to the broker. Connection refused.")

    monkeypatch.setattr(app.Task, "apply_async", broker_down)
    with commit():
        response = client.post(
            reverse("api-booking-request", args=[schedule.slug]),
            {"name": "Bob", "email": BOOKEE, "start": _slot().isoformat()},
            content_type="application/json",
        )

    assert response.status_code == 201, response.content
    booking = Booking.objects.get()
    delivery = Delivery.objects.get(booking=booking)
    assert delivery.status == DeliveryStatus.PENDING and smtp_sink.messages == []
    monkeypatch.undo()

    # The lost enqueues are the sweeps' once their grace has passed.
    later = timezone.now() + dt.timedelta(minutes=2)
    assert services.bookings_publish_sweep(now=later) == [booking.pk]
    assert deliveries_sweep(now=later).enqueued == [delivery.pk]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.SENT
    assert [m.rcpt_tos for m in smtp_sink.messages] == [("owner@example.org",)]


def test_booking_emails_show_in_the_deliveries_admin_and_the_booking_timeline(
    admin_client: Client, smtp_sink: SmtpSink, commit: Commit, schedule: Schedule
) -> None:
    booking = _request(commit, schedule)
    delivery = Delivery.objects.get(booking=booking)

    listing = admin_client.get(reverse("admin:invitations_delivery_changelist"))
    timeline = admin_client.get(reverse("admin:calendars_booking_change", args=[booking.pk]))
    preview = admin_client.get(reverse("admin:invitations_delivery_preview", args=[delivery.pk]))

    assert (
        reverse("admin:invitations_delivery_change", args=[delivery.pk]) in listing.content.decode()
    )
    assert "New booking request" in listing.content.decode()
    text = timeline.content.decode()
    assert reverse("admin:invitations_delivery_change", args=[delivery.pk]) in text
    assert "new booking request email sent" in text
    assert preview.status_code == 200 and "/bookings/decide/?token=" in preview.content.decode()
