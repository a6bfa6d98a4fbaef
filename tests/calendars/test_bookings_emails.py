"""The bookings' emails over real SMTP (aiosmtpd): bounded retries of transient failures."""

from __future__ import annotations

import pytest

from calendars.tasks import EMAIL_MAX_RETRIES, booking_subscriber_email_task
from tests.factories import BookingFactory, ScheduleFactory
from tests.fakes.smtp import SmtpSink

pytestmark = pytest.mark.django_db


@pytest.fixture
def booking():  # type: ignore[no-untyped-def]
    schedule = ScheduleFactory()
    return BookingFactory(
        calendar=schedule.calendar, schedule=schedule, attendee_name="Bob <b> & Co"
    )


def test_subscriber_email_is_retried_and_sent_once_when_smtp_defers(
    smtp_sink: SmtpSink,
    booking,  # type: ignore[no-untyped-def]
) -> None:
    smtp_sink.refuse_next(2, code=421)
    assert booking_subscriber_email_task.delay(booking.pk, "request").get() == "sent"
    assert len(smtp_sink.messages) == 1
    [received] = smtp_sink.messages
    assert received.rcpt_tos == (booking.organizer.email,)
    # Every attempt carried the same Message-ID, so a client folds duplicates.
    assert smtp_sink.attempts == [received.message_id] * 3
    message = received.message
    assert message["Reply-To"] == booking.attendee_email
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "Bob &lt;b&gt; &amp; Co" in html and "/bookings/decide/?token=" in html


def test_subscriber_email_is_not_retried_when_smtp_refuses_for_good(
    smtp_sink: SmtpSink,
    booking,  # type: ignore[no-untyped-def]
) -> None:
    smtp_sink.refuse_next(1, code=554)
    assert booking_subscriber_email_task.delay(booking.pk, "request").get() == "failed"
    assert len(smtp_sink.attempts) == 1 and smtp_sink.messages == []


def test_retries_are_bounded_when_smtp_keeps_deferring(
    smtp_sink: SmtpSink,
    booking,  # type: ignore[no-untyped-def]
) -> None:
    smtp_sink.refuse_next(EMAIL_MAX_RETRIES + 5, code=451)
    assert booking_subscriber_email_task.delay(booking.pk, "request").get() == "failed"
    assert len(smtp_sink.attempts) == EMAIL_MAX_RETRIES + 1
    assert smtp_sink.messages == []


def test_request_email_is_skipped_when_booking_was_decided_before_it_left(
    smtp_sink: SmtpSink,
    booking,  # type: ignore[no-untyped-def]
) -> None:
    booking.status = "declined"
    booking.save()
    assert booking_subscriber_email_task.delay(booking.pk, "request").get() == "skipped"
    assert smtp_sink.attempts == []
