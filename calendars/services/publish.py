"""Publish a booking: make its calendar reflect its status (Convoke to the provider).

"Sync" in Convoke means Google to Convoke only (:mod:`gcal_push.sync`); this is the other
direction. :func:`booking_publish_enqueue` marks bookings to publish (``publish_state``
pending, ``publish_due_at`` set) in the caller's transaction and enqueues the task after the
commit; :func:`bookings_publish_sweep` enqueues again what is due and was lost (a broker
refusal, a dead worker, a lost retry).

:func:`booking_publish` is what the Celery task runs after every booking change. It
compares ``Booking.status`` with ``Booking.provider_status`` (what the provider last
reflected) and does the one step that closes the gap (:mod:`.publish_steps`), by calendar kind:

- Google calendar, ``GOOGLE_INVITE_ENABLED``: a new booking is ``events.insert``
  (tentative, or confirmed when auto-confirmed) with ``sendUpdates=all``, so Google emails the
  bookee; confirming is ``events.patch`` to confirmed, declining or cancelling is
  ``events.delete``, both with ``sendUpdates=all``.
- Google calendar, flag off: ``events.import`` (Google sends nothing) plus Convoke's own
  REQUEST email; confirming patches the status and sends a REQUEST with SEQUENCE+1;
  declining or cancelling deletes the event and sends a CANCEL. These emails go to the
  outbox (:func:`calendars.hooks.booking_email_enqueue`) in the transaction that records
  the step, so none is lost and none is sent twice.
- CalDAV calendar: the event with ORGANIZER and ATTENDEE is PUT to the organizer's
  collection; confirming PUTs it again with SEQUENCE+1 and STATUS:CONFIRMED; declining or
  cancelling DELETEs it.

On CalDAV, a server that announces scheduling (RFC 6638 section 2,
:func:`calendars.providers.caldav.server_schedules`) emits the iTIP messages itself;
otherwise Convoke sends them as on Google with the flag off.

Idempotence: the Google event id is chosen and stored when the booking is created, so a
retried insert gets 409 and the existing event is fetched and compared; a delete answered 404
or 410 is done; ``provider_status`` is written after each successful step, so a repeated task
finds nothing to do.

Concurrency with Google: every patch and delete sends ``If-Match`` with the ETag Convoke last
saw (``Booking.google_etag``, from its own writes and from the sync). When the event changed
in Google meanwhile (412), was deleted (410, or read back cancelled), the step raises
:class:`~calendars.services.publish_steps.EventChangedInGoogle`: the event as Google has it
now is applied to the booking first, through the sync's mapping (the ``google_event_apply``
hook), and the publish decides again from there. A deleted event is never patched (Google
would restore it) and never deleted again.

A lease on the booking (``publish_lease_until``, taken with a conditional ``UPDATE``) lets
one publish at a time call the provider, outside any transaction (on SQLite a transaction
would hold the whole database's write lock during the HTTP call).
"""

from __future__ import annotations

import datetime as dt
import enum
import logging

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from calendars import hooks
from calendars.enqueue import enqueue, enqueue_on_commit
from calendars.hooks import BookingEmail, BookingEmailRequest
from calendars.ical import EventStatus, Method
from calendars.models import Booking, PublishState
from calendars.providers import google
from calendars.services.publish_steps import (
    EventChangedInGoogle,
    StepResult,
    booking_event_body,
    calendar_mode,
    publish_step,
)
from calendars.tasks import booking_publish_task

logger = logging.getLogger(__name__)

LEASE = dt.timedelta(minutes=5)
MAX_ROUNDS = 4  # the status may change while a step runs; follow it a few times
PUBLISH_ERROR_MAX = 500


# A booking marked to publish is enqueued after the commit; the sweep steps in when it is
# still due after this long (the enqueue was lost), and leaves what it enqueued this long.
PUBLISH_ENQUEUE_GRACE = dt.timedelta(seconds=60)
SWEEP_LEASE = dt.timedelta(minutes=5)
SWEEP_BATCH_SIZE = 500


class PublishOutcome(enum.StrEnum):
    PUBLISHED = "published"
    UNCHANGED = "unchanged"  # the provider already reflected the status
    BUSY = "busy"  # another publish holds the lease; try again later


def booking_publish_enqueue(*, booking_ids: list[int]) -> None:
    """Mark bookings to publish and enqueue their publish after the caller's commit.

    The mark (``publish_state`` pending, ``publish_due_at`` a little ahead) is committed with
    the change that calls for it; the task is only a nudge. When the broker refuses it, or
    the worker dies, :func:`bookings_publish_sweep` finds the mark and enqueues it again.
    Publishing is idempotent, so an extra call costs at most one read.
    """
    if not booking_ids:
        return
    now = timezone.now()
    Booking.objects.filter(pk__in=booking_ids).update(
        publish_state=PublishState.PENDING,
        publish_error="",
        publish_due_at=now + PUBLISH_ENQUEUE_GRACE,
        updated_at=now,
    )
    for booking_id in booking_ids:
        enqueue_on_commit(booking_publish_task, booking_id)


def bookings_publish_sweep(
    *, now: dt.datetime | None = None, batch_size: int = SWEEP_BATCH_SIZE
) -> list[int]:
    """Periodic: enqueue the publish of every booking still pending past its due time, whose
    enqueue or retry was lost. Returns the ids enqueued; constant queries per call."""
    now = now or timezone.now()
    due = list(
        Booking.objects.filter(publish_state=PublishState.PENDING, publish_due_at__lte=now)
        .filter(Q(publish_lease_until__isnull=True) | Q(publish_lease_until__lt=now))
        .order_by("publish_due_at", "pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    if due:
        Booking.objects.filter(pk__in=due).update(publish_due_at=now + SWEEP_LEASE)
    enqueued: list[int] = []
    for booking_id in due:
        if not enqueue(booking_publish_task, booking_id):
            break  # the broker is down; the lease lapses and the next sweep tries again
        enqueued.append(booking_id)
    if enqueued:
        logger.warning("bookings to publish enqueued by the sweep count=%d", len(enqueued))
    return enqueued


def booking_publish(*, booking_id: int) -> PublishOutcome:
    """Bring the booking's calendar in line with its status. See the module docstring.

    Raises :class:`~calendars.providers.TransientProviderError` (retry later),
    :class:`BookingPublishFailed` or another :class:`~calendars.providers.ProviderError`
    (record the failure), ``Booking.DoesNotExist``.
    """
    if not _lease_take(booking_id=booking_id):
        return PublishOutcome.BUSY
    outcome = PublishOutcome.UNCHANGED
    try:
        for _ in range(MAX_ROUNDS):
            booking = Booking.objects.select_related(
                "calendar", "calendar__google_account", "organizer"
            ).get(pk=booking_id)
            if booking.provider_status == booking.status:
                _synced_mark(booking_id=booking_id, status=booking.status)
                return outcome
            try:
                step = publish_step(booking)
            except EventChangedInGoogle as changed:
                # Google's truth first: the booking follows the event, then we decide again.
                logger.info(
                    "booking publish found the event changed in Google booking=%s status=%s",
                    booking_id,
                    changed.event.status,
                )
                hooks.google_event_apply(booking_id=booking_id, event=changed.event)
                continue
            _step_record(booking=booking, step=step)
            outcome = PublishOutcome.PUBLISHED
        return outcome
    finally:
        Booking.objects.filter(pk=booking_id).update(publish_lease_until=None)


def booking_publish_failed_record(*, booking_id: int, reason: str) -> None:
    """The publish gave up: operators see ``publish_state=failed`` and the reason (admin, API)."""
    Booking.objects.filter(pk=booking_id).update(
        publish_state=PublishState.FAILED,
        publish_error=reason[:PUBLISH_ERROR_MAX],
        publish_due_at=None,
    )
    logger.warning("booking publish failed booking=%s reason=%s", booking_id, reason)


def booking_publish_retry_record(*, booking_id: int, reason: str, delay_seconds: float) -> None:
    """A transient failure: still pending, with the latest reason for operators to see, and
    due again after the retry's delay (should the retry itself be lost)."""
    Booking.objects.filter(pk=booking_id).exclude(publish_state=PublishState.PUBLISHED).update(
        publish_error=f"retrying: {reason}"[:PUBLISH_ERROR_MAX],
        publish_due_at=timezone.now() + dt.timedelta(seconds=delay_seconds) + PUBLISH_ENQUEUE_GRACE,
    )


# --- Lease ---------------------------------------------------------------------------------


def _lease_take(*, booking_id: int) -> bool:
    now = timezone.now()
    return bool(
        Booking.objects.filter(pk=booking_id)
        .filter(Q(publish_lease_until__isnull=True) | Q(publish_lease_until__lt=now))
        .update(publish_lease_until=now + LEASE)
    )


def _synced_mark(*, booking_id: int, status: str) -> None:
    Booking.objects.filter(pk=booking_id, status=status, provider_status=status).exclude(
        publish_state=PublishState.PUBLISHED, publish_error="", publish_due_at=None
    ).update(publish_state=PublishState.PUBLISHED, publish_error="", publish_due_at=None)


def _event_seen_record(*, booking_id: int, event: google.Event) -> None:
    """Remember the event as our write left it (its ETag for the next ``If-Match``), unless
    the sync saw a newer state meanwhile."""
    rows = Booking.objects.filter(pk=booking_id)
    if event.updated is not None:
        rows = rows.exclude(google_updated__gt=event.updated)
    rows.update(
        google_etag=event.etag,
        google_event_status=str(event.status),
        google_updated=event.updated,
    )


def _step_record(*, booking: Booking, step: StepResult) -> None:
    with transaction.atomic():
        Booking.objects.filter(pk=booking.pk).update(
            provider_status=step.provider_status,
            sequence=step.sequence,
            google_event_id=step.google_event_id,
        )
        if step.event is not None:
            _event_seen_record(booking_id=booking.pk, event=step.event)
        _synced_mark(booking_id=booking.pk, status=step.provider_status)
        for invitation in step.invitations:
            # Stored in the outbox with the step: recorded together, or not at all.
            hooks.booking_email_enqueue(
                BookingEmailRequest(
                    booking_id=booking.pk,
                    email=BookingEmail.INVITATION,
                    method=invitation.method,
                    sequence=invitation.sequence,
                    body=booking_event_body(
                        booking,
                        sequence=invitation.sequence,
                        status=EventStatus.CANCELLED
                        if invitation.method == Method.CANCEL
                        else None,
                        method=invitation.method,
                    ),
                )
            )
    logger.info(
        "booking published booking=%s provider_status=%s mode=%s",
        booking.pk,
        step.provider_status,
        calendar_mode(provider=booking.calendar.provider),
    )
