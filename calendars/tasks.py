"""Celery tasks of the bookings: thin wrappers that take ids and call one service.

Retries (STYLE.md rule 8): only named transient errors are retried, with exponential backoff,
jitter and a cap; the tasks count attempts themselves (``max_retries=None``, so that Celery
never gives up first and skips the recording); then the failure is recorded where operators
see it (``Booking.sync_state`` ``failed`` with ``sync_error``, in the admin and the API).
Nothing secret is passed in arguments: tasks load what they need.
"""

from __future__ import annotations

import logging
import random
import smtplib
import traceback

from celery import shared_task
from django.conf import settings

from calendars import booking_emails
from calendars.booking_sync import (
    BookingSyncFailed,
    SyncOutcome,
    booking_provider_sync,
    booking_sync_failed_record,
    booking_sync_retry_record,
)
from calendars.models import Booking
from calendars.providers import ProviderError, ProviderNotConfigured, TransientProviderError

logger = logging.getLogger(__name__)

EMAIL_MAX_RETRIES = 5
EMAIL_BACKOFF_SECONDS = 60.0
BACKOFF_CAP_SECONDS = 3600.0


def backoff_seconds(attempt: int, *, base: float, hint: float | None = None) -> float:
    """``base * 2**attempt`` with full jitter in its upper half, capped; at least ``hint``."""
    delay = min(BACKOFF_CAP_SECONDS, base * (2**attempt)) * random.uniform(0.5, 1.0)
    return max(delay, hint or 0.0)


@shared_task(
    bind=True, name="calendars.tasks.booking_provider_sync_task", acks_late=True, max_retries=None
)
def booking_provider_sync_task(self, booking_id: int) -> str:  # type: ignore[no-untyped-def]
    """Make the booking's calendar reflect its status (see :mod:`calendars.booking_sync`)."""
    attempt = self.request.retries or 0
    try:
        outcome = booking_provider_sync(booking_id=booking_id)
    except Booking.DoesNotExist:
        return "gone"
    except TransientProviderError as exc:
        reason = f"{exc.reason} ({type(exc).__name__})"
        if attempt >= settings.BOOKING_SYNC_MAX_RETRIES:
            booking_sync_failed_record(booking_id=booking_id, reason=f"gave up: {reason}")
            return "failed"
        booking_sync_retry_record(booking_id=booking_id, reason=reason)
        countdown = backoff_seconds(
            attempt, base=settings.BOOKING_SYNC_BACKOFF_SECONDS, hint=exc.retry_after_seconds
        )
        logger.info(
            "booking sync retry booking=%s attempt=%d reason=%s", booking_id, attempt + 1, reason
        )
        raise self.retry(countdown=countdown, exc=exc) from exc
    except ProviderError as exc:
        _permanent_failure(booking_id=booking_id, exc=exc)
        return "failed"
    except Exception as exc:
        # Task boundary (STYLE.md rule 12): a bug must not leave the booking "pending" for
        # ever. Only the type and place are kept: the text may quote an address.
        where = _where(exc)
        logger.error(
            "booking sync crashed booking=%s error=%s at=%s", booking_id, type(exc).__name__, where
        )
        booking_sync_failed_record(
            booking_id=booking_id, reason=f"internal error {type(exc).__name__} at {where}"
        )
        raise
    if outcome is SyncOutcome.BUSY:
        if attempt >= settings.BOOKING_SYNC_MAX_RETRIES:
            booking_sync_failed_record(booking_id=booking_id, reason="gave up: sync kept busy")
            return "failed"
        # Another worker is syncing this booking; it may have read the older status.
        raise self.retry(
            countdown=backoff_seconds(attempt, base=max(settings.BOOKING_SYNC_BACKOFF_SECONDS, 1))
        )
    return str(outcome)


def _where(exc: BaseException) -> str:
    """``file:line`` of the innermost frame: enough to find a bug, free of personal data."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    return f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}"


def _permanent_failure(*, booking_id: int, exc: ProviderError) -> None:
    from calendars.providers.google import AuthRevoked

    if isinstance(exc, AuthRevoked):
        from calendars.google_oauth import google_account_revoked_record

        account_id = (
            Booking.objects.filter(pk=booking_id)
            .values_list("calendar__google_account_id", flat=True)
            .first()
        )
        if account_id:
            google_account_revoked_record(account_id=account_id)
        reason = "the Google account is disconnected (access revoked)"
    elif isinstance(exc, ProviderNotConfigured):
        reason = f"not configured: {exc}"
    elif isinstance(exc, BookingSyncFailed):
        reason = str(exc)
    else:
        reason = f"{exc.reason} ({type(exc).__name__})"
    booking_sync_failed_record(booking_id=booking_id, reason=reason)


def _transient_mail_error(exc: BaseException) -> bool:
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return isinstance(
        exc,
        smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError | ConnectionError | TimeoutError,
    )


def _send_with_retry(task, ref: str, send) -> str:  # type: ignore[no-untyped-def]
    attempt = task.request.retries or 0
    try:
        return str(send())
    except (smtplib.SMTPException, OSError) as exc:
        if not _transient_mail_error(exc) or attempt >= EMAIL_MAX_RETRIES:
            logger.error("email failed %s error=%s", ref, type(exc).__name__)
            return "failed"
        logger.info("email retry %s attempt=%d error=%s", ref, attempt + 1, type(exc).__name__)
        raise task.retry(
            countdown=backoff_seconds(attempt, base=EMAIL_BACKOFF_SECONDS), exc=exc
        ) from exc


@shared_task(
    bind=True,
    name="calendars.tasks.booking_subscriber_email_task",
    acks_late=True,
    max_retries=None,
)
def booking_subscriber_email_task(self, booking_id: int, kind: str) -> str:  # type: ignore[no-untyped-def]
    """The subscriber's email about a new booking: Confirm/Deny links, or an auto-confirm notice."""
    return _send_with_retry(
        self,
        f"booking={booking_id} kind={kind}",
        lambda: booking_emails.subscriber_email_send(booking_id=booking_id, kind=kind),
    )


@shared_task(
    bind=True,
    name="calendars.tasks.booking_invitation_email_task",
    acks_late=True,
    max_retries=None,
)
def booking_invitation_email_task(self, booking_id: int, method: str, sequence: int) -> str:  # type: ignore[no-untyped-def]
    """Convoke's own iTIP email to the bookee, when no provider sends one."""
    return _send_with_retry(
        self,
        f"booking={booking_id} method={method}",
        lambda: booking_emails.invitation_email_send(
            booking_id=booking_id, method=method, sequence=sequence
        ),
    )


@shared_task(
    bind=True,
    name="calendars.tasks.google_account_revoked_email_task",
    acks_late=True,
    max_retries=None,
)
def google_account_revoked_email_task(self, account_id: int) -> str:  # type: ignore[no-untyped-def]
    """Tell the subscriber that Google access was revoked and how to reconnect."""
    return _send_with_retry(
        self,
        f"google_account={account_id}",
        lambda: booking_emails.google_revoked_email_send(account_id=account_id),
    )
