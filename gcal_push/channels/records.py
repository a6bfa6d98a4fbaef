"""What the channel runs share: their summary, the per-calendar claims (the database lock),
and the bookkeeping of watch results, failures, refusals and revoked grants."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence

from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from gcal_push.channels.calls import CallOutcome, CallResult
from gcal_push.models import ChannelState, GoogleCalendarChannel, GoogleCalendarSyncState
from gcal_push.notifications import calendar_syncs_request
from gcal_push.revocation import google_calendars_revoked

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 200
DEFAULT_CONCURRENCY = 8
CHANNEL_LEASE = dt.timedelta(minutes=5)
MAX_FAILURES_KEPT = 100


@dataclasses.dataclass
class ChannelRunSummary:
    """What a run did (or, in a dry run, would do)."""

    created: int = 0
    renewed: int = 0
    stopped: int = 0
    skipped: int = 0
    failed: int = 0
    dry_run: bool = False
    # Of the skipped: calendars another run was working on. Of the failed: transient ones.
    busy: int = 0
    transient_failures: int = 0
    # (calendar id, reason) of the first failures, for the operator.
    failures: list[tuple[int, str]] = dataclasses.field(default_factory=list)

    def fail(self, calendar_id: int, reason: str, *, transient: bool = False) -> None:
        self.failed += 1
        self.transient_failures += int(transient)
        if len(self.failures) < MAX_FAILURES_KEPT:
            self.failures.append((calendar_id, reason))

    def merge(self, other: ChannelRunSummary) -> None:
        self.created += other.created
        self.renewed += other.renewed
        self.stopped += other.stopped
        self.skipped += other.skipped
        self.busy += other.busy
        self.transient_failures += other.transient_failures
        self.failed += other.failed
        room = MAX_FAILURES_KEPT - len(self.failures)
        self.failures.extend(other.failures[: max(room, 0)])

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created,
            "renewed": self.renewed,
            "stopped": self.stopped,
            "skipped": self.skipped,
            "failed": self.failed,
        }


@dataclasses.dataclass(frozen=True)
class BatchProgress:
    """Reported after each batch: items done so far, of ``total`` (known at the start)."""

    done: int
    total: int
    summary: ChannelRunSummary
    lines: tuple[str, ...] = ()


ProgressCallback = Callable[[BatchProgress], None]


# --- Claims: the per-calendar database lock ------------------------------------------------------


def sync_states_ensure(calendar_ids: Iterable[int]) -> None:
    GoogleCalendarSyncState.objects.bulk_create(
        [GoogleCalendarSyncState(calendar_id=pk) for pk in calendar_ids], ignore_conflicts=True
    )


def claim(calendar_ids: Iterable[int], owner: str) -> set[int]:
    ids = list(calendar_ids)
    now = timezone.now()
    GoogleCalendarSyncState.objects.filter(pk__in=ids).filter(
        Q(channel_lease_owner="") | Q(channel_lease_expires_at__lt=now)
    ).update(channel_lease_owner=owner, channel_lease_expires_at=now + CHANNEL_LEASE)
    return set(
        GoogleCalendarSyncState.objects.filter(pk__in=ids, channel_lease_owner=owner).values_list(
            "pk", flat=True
        )
    )


def release(calendar_ids: Iterable[int], owner: str) -> None:
    GoogleCalendarSyncState.objects.filter(
        pk__in=list(calendar_ids), channel_lease_owner=owner
    ).update(channel_lease_owner="", channel_lease_expires_at=None)


# --- Bookkeeping shared by the batches -----------------------------------------------------------


def record_failures(failures: dict[int, str]) -> None:
    """One query: failure count, reason and time on each calendar's sync state."""
    if not failures:
        return
    GoogleCalendarSyncState.objects.filter(pk__in=list(failures)).update(
        failure_count=F("failure_count") + 1,
        last_error=Case(
            *[When(pk=pk, then=Value(reason[:200])) for pk, reason in failures.items()],
            default=F("last_error"),
        ),
        last_failure_at=timezone.now(),
    )


def record_unsupported(calendar_ids: set[int]) -> None:
    if calendar_ids:
        GoogleCalendarSyncState.objects.filter(pk__in=list(calendar_ids)).update(
            watch_unsupported=True, watch_unsupported_at=timezone.now()
        )
        logger.warning("google watch refused for good calendars=%d", len(calendar_ids))


def channels_store(
    *,
    activated: list[GoogleCalendarChannel],
    abandoned: list[GoogleCalendarChannel],
    retiring: Sequence[GoogleCalendarChannel] = (),
) -> None:
    """Write a batch's watch results in one transaction, in a constant number of queries.

    The replaced channels leave ``active`` before their successors enter it (one active
    channel per calendar); both keep delivering until the old ones are stopped.
    """
    now = timezone.now()
    with transaction.atomic():
        if retiring:
            GoogleCalendarChannel.objects.filter(pk__in=[ch.pk for ch in retiring]).update(
                state=ChannelState.RETIRING, renewed_at=now
            )
        if activated:
            GoogleCalendarChannel.objects.bulk_update(activated, ["resource_id", "expiration"])
            GoogleCalendarChannel.objects.filter(pk__in=[ch.pk for ch in activated]).update(
                state=ChannelState.ACTIVE
            )
            # A reconnected account's calendars are watched again.
            GoogleCalendarSyncState.objects.filter(
                pk__in=[ch.calendar_id for ch in activated], grant_revoked_at__isnull=False
            ).update(grant_revoked_at=None)
        if abandoned:
            GoogleCalendarChannel.objects.filter(pk__in=[ch.pk for ch in abandoned]).update(
                state=ChannelState.STOPPED, stopped_at=now
            )


def watch_results_store(
    pending: list[GoogleCalendarChannel],
    results: list[CallResult],
    summary: ChannelRunSummary,
) -> tuple[list[GoogleCalendarChannel], list[GoogleCalendarChannel]]:
    """Set each pending channel active or stopped from its watch result (not saved yet), and
    record failures, refusals and revoked grants on the calendars."""
    activated: list[GoogleCalendarChannel] = []
    abandoned: list[GoogleCalendarChannel] = []
    failures: dict[int, str] = {}
    unsupported: set[int] = set()
    revoked: set[int] = set()
    now = timezone.now()
    for channel, result in zip(pending, results, strict=True):
        if result.outcome == CallOutcome.OK and result.channel is not None:
            channel.state = ChannelState.ACTIVE
            channel.resource_id = result.channel.resource_id
            channel.expiration = result.channel.expiration
            activated.append(channel)
            continue
        channel.state = ChannelState.STOPPED
        channel.stopped_at = now
        abandoned.append(channel)
        if result.outcome == CallOutcome.UNSUPPORTED:
            # Not a failure of ours: the calendar falls back to the periodic sync.
            unsupported.add(channel.calendar_id)
            summary.skipped += 1
        elif result.outcome == CallOutcome.REVOKED:
            revoked.add(channel.calendar_id)
            summary.fail(channel.calendar_id, result.reason)
        else:
            failures[channel.calendar_id] = result.reason
            summary.fail(channel.calendar_id, result.reason, transient=result.transient)
    record_failures(failures)
    record_unsupported(unsupported)
    google_calendars_revoked(revoked)
    if unsupported:
        # Calendars Google refuses to watch are kept in sync by the periodic reconciliation;
        # they get their first sync now.
        calendar_syncs_request(unsupported)
    return activated, abandoned
