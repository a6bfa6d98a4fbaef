"""Celery tasks of the bookings: thin wrappers that take ids and call one service.

The services enqueue these tasks after their commit, so the tasks import the services in
their bodies: the tasks module is the layer above.

Retries (docs/style.md rule 8): only named transient errors are retried, under the
``booking_publish`` retry policy (:mod:`calendars.retry`); the task counts attempts itself
(``max_retries=None``, so that Celery never gives up first and skips the recording); then the
failure is recorded where operators see it (``Booking.publish_state`` ``failed`` with
``publish_error``, in the admin and the API). A retry that the broker loses is taken up by
:func:`bookings_publish_sweep_task`. Nothing secret is passed in arguments.

The bookings' emails are not sent from here: they are stored in the outbox with the change
that causes them, and sent by :mod:`invitations.tasks`.
"""

from __future__ import annotations

import logging
import traceback

from celery import shared_task

from calendars import hooks
from calendars.models import Booking
from calendars.providers import (
    ProviderError,
    ProviderNotConfigured,
    TransientProviderError,
    google,
)
from calendars.retry import retry_policy

logger = logging.getLogger(__name__)


@shared_task(
    bind=True, name="calendars.tasks.booking_publish_task", acks_late=True, max_retries=None
)
def booking_publish_task(self, booking_id: int) -> str:  # type: ignore[no-untyped-def]
    """Make the booking's calendar reflect its status (:mod:`calendars.services.publish`)."""
    from calendars.services.publish import (
        PublishOutcome,
        booking_publish,
        booking_publish_failed_record,
        booking_publish_retry_record,
    )

    policy = retry_policy("booking_publish")
    attempts = (self.request.retries or 0) + 1
    try:
        outcome = booking_publish(booking_id=booking_id)
    except Booking.DoesNotExist:
        return "gone"
    except TransientProviderError as exc:
        reason = f"{exc.reason} ({type(exc).__name__})"
        if policy.exhausted(attempts=attempts):
            booking_publish_failed_record(booking_id=booking_id, reason=f"gave up: {reason}")
            return "failed"
        countdown = policy.delay(failures=attempts, hint=exc.retry_after_seconds)
        booking_publish_retry_record(booking_id=booking_id, reason=reason, delay_seconds=countdown)
        logger.info(
            "booking publish retry booking=%s attempt=%d reason=%s", booking_id, attempts, reason
        )
        raise self.retry(countdown=countdown, exc=exc) from exc
    except ProviderError as exc:
        _permanent_failure(booking_id=booking_id, exc=exc)
        return "failed"
    except Exception as exc:
        # Task boundary (docs/style.md rule 12): a bug must not leave the booking "pending" for
        # ever. Only the type and place are kept: the text may quote an address.
        where = _where(exc)
        logger.error(
            "booking publish crashed booking=%s error=%s at=%s",
            booking_id,
            type(exc).__name__,
            where,
        )
        booking_publish_failed_record(
            booking_id=booking_id, reason=f"internal error {type(exc).__name__} at {where}"
        )
        raise
    if outcome is PublishOutcome.BUSY:
        if policy.exhausted(attempts=attempts):
            booking_publish_failed_record(
                booking_id=booking_id, reason="gave up: publish kept busy"
            )
            return "failed"
        # Another worker is publishing this booking; it may have read the older status.
        countdown = max(policy.delay(failures=attempts), 1.0)
        booking_publish_retry_record(
            booking_id=booking_id, reason="another publish was running", delay_seconds=countdown
        )
        raise self.retry(countdown=countdown)
    return str(outcome)


@shared_task(name="calendars.tasks.bookings_publish_sweep_task", ignore_result=True)
def bookings_publish_sweep_task() -> int:
    """Periodic (Celery beat, with the delivery sweep): enqueue the publish of bookings whose
    enqueue or retry was lost."""
    from calendars.services.publish import bookings_publish_sweep

    return len(bookings_publish_sweep())


def _where(exc: BaseException) -> str:
    """``file:line`` of the innermost frame: enough to find a bug, free of personal data."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    return f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}"


def _permanent_failure(*, booking_id: int, exc: ProviderError) -> None:
    from calendars.services.publish import booking_publish_failed_record
    from calendars.services.publish_steps import BookingPublishFailed

    if isinstance(exc, google.AuthRevoked):
        account_id = (
            Booking.objects.filter(pk=booking_id)
            .values_list("calendar__google_account_id", flat=True)
            .first()
        )
        if account_id:
            hooks.google_grant_revoked(account_id=account_id)
        reason = "the Google account is disconnected (access revoked)"
    elif isinstance(exc, ProviderNotConfigured):
        reason = f"not configured: {exc}"
    elif isinstance(exc, BookingPublishFailed):
        reason = str(exc)
    else:
        reason = f"{exc.reason} ({type(exc).__name__})"
    booking_publish_failed_record(booking_id=booking_id, reason=reason)
