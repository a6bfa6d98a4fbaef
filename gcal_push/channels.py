"""Watch-channel lifecycle in batches: create (backfill), renew, tear down (DESIGN.md 1.4).

The same engine serves one calendar (a schedule's calendar changed) and every calendar (the
``backfill_google_channels`` and ``renew_google_channels`` commands, the hourly beat task):

* work goes in batches of ``batch_size``, walked by primary key, so memory does not grow
  with the number of channels and each batch costs a constant number of queries;
* before touching a calendar, a batch *claims* it: one conditional ``UPDATE`` sets the
  channel lease of its :class:`~gcal_push.models.GoogleCalendarSyncState` row, and only
  claimed calendars are worked on. Concurrent runs (two commands, a command and the beat
  task, a schedule change) therefore never work on one calendar at once, and the partial
  unique constraints (one pending, one active channel per calendar) make a second channel
  impossible even if a lease were lost;
* Google calls run on a bounded thread pool (``concurrency``); each call builds its own
  client (httplib2 is not thread-safe);
* a channel row is written ``pending`` before ``events.watch`` is called, so that Google's
  ``sync`` message, which may arrive before the watch response, is recognised;
* renewal is make-before-break: the new channel is created and stored active while the old
  one still delivers, then the old one is set ``retiring`` (still accepted by the webhook)
  and stopped. A calendar being renewed always has a live channel.

Calendar API references: guides/push (watch, stop, expiration, no renewal in place),
v3/reference/events/watch, v3/reference/channels/stop.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, Max, Q, Value, When
from django.utils import timezone

from calendars.models import Calendar, GoogleAccount
from calendars.providers import ProviderError, TransientProviderError, google
from gcal_push import selectors
from gcal_push.models import (
    ChannelState,
    GoogleCalendarChannel,
    GoogleCalendarSyncState,
)
from gcal_push.notifications import calendar_syncs_request

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 200
DEFAULT_CONCURRENCY = 8
CHANNEL_LEASE = dt.timedelta(minutes=5)
MAX_FAILURES_KEPT = 100


class CallOutcome(StrEnum):
    OK = "ok"
    UNSUPPORTED = "unsupported"  # pushNotSupportedForRequestedResource: permanent
    REVOKED = "revoked"  # invalid_grant: the account must reconnect
    GONE = "gone"  # channels.stop answered 404: already stopped or expired
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class CallResult:
    outcome: CallOutcome
    channel: google.Channel | None = None
    reason: str = ""
    # A failure worth trying again later (rate limit, 5xx, timeout).
    transient: bool = False


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

# --- Google calls on a bounded pool --------------------------------------------------------------


class Clients:
    """Google clients for one bounded run: one per account and thread, since a client (its
    ``httplib2.Http``) must never be shared between threads, and building one costs more than
    a call to the fake."""

    def __init__(self) -> None:
        self._local = threading.local()

    def for_account(self, account: GoogleAccount) -> google.GoogleCalendarClient:
        cache: dict[int, google.GoogleCalendarClient] = getattr(self._local, "clients", None) or {}
        self._local.clients = cache
        client = cache.get(account.pk)
        if client is None:
            client = cache[account.pk] = google.GoogleCalendarClient.for_account(account)
        return client


def _run_bounded[T, R](
    jobs: Sequence[T], call: Callable[[T, Clients], R], *, concurrency: int
) -> list[R]:
    """``call`` on every job with at most ``concurrency`` at once; results in job order."""
    clients = Clients()
    if concurrency <= 1 or len(jobs) <= 1:
        return [call(job, clients) for job in jobs]

    def in_thread(job: T) -> R:
        try:
            return call(job, clients)
        finally:
            # A token refresh writes the account back from this thread: give its connection up.
            connection.close()

    with ThreadPoolExecutor(max_workers=min(concurrency, len(jobs))) as pool:
        return list(pool.map(in_thread, jobs))


def _classify(exc: ProviderError) -> CallResult:
    if isinstance(exc, google.PushNotSupported):
        return CallResult(CallOutcome.UNSUPPORTED, reason=exc.reason)
    if isinstance(exc, google.AuthRevoked):
        return CallResult(CallOutcome.REVOKED, reason=exc.reason)
    return CallResult(
        CallOutcome.FAILED, reason=exc.reason, transient=isinstance(exc, TransientProviderError)
    )


@dataclasses.dataclass(frozen=True)
class _WatchJob:
    account: GoogleAccount
    remote_id: str
    channel_id: str
    token: str


def _watch(job: _WatchJob, clients: Clients) -> CallResult:
    address = settings.GOOGLE_WEBHOOK_URL
    if not address:
        return CallResult(CallOutcome.FAILED, reason="GOOGLE_WEBHOOK_URL unset")
    try:
        client = clients.for_account(job.account)
        channel = client.events_watch(
            calendar_id=job.remote_id,
            channel_id=job.channel_id,
            address=address,
            token=job.token,
            ttl_seconds=settings.GOOGLE_CHANNEL_TTL_SECONDS,
        )
    except ProviderError as exc:
        return _classify(exc)
    if not channel.resource_id:
        return CallResult(CallOutcome.FAILED, reason="watch response without resourceId")
    return CallResult(CallOutcome.OK, channel=channel)


@dataclasses.dataclass(frozen=True)
class _StopJob:
    account: GoogleAccount | None
    channel_id: str
    resource_id: str


def _stop(job: _StopJob, clients: Clients) -> CallResult:
    if not job.resource_id:
        # Never confirmed by Google (the watch failed or its answer was lost): nothing
        # we could stop; the webhook ignores it once stopped here.
        return CallResult(CallOutcome.GONE)
    if job.account is None:
        return CallResult(CallOutcome.REVOKED, reason="no Google account")
    try:
        client = clients.for_account(job.account)
        client.channel_stop(channel_id=job.channel_id, resource_id=job.resource_id)
    except google.NotFound:
        return CallResult(CallOutcome.GONE)  # unknown or already stopped: done (guides/push)
    except ProviderError as exc:
        return _classify(exc)
    return CallResult(CallOutcome.OK)


# --- Claims: the per-calendar database lock ------------------------------------------------------


def _sync_states_ensure(calendar_ids: Iterable[int]) -> None:
    GoogleCalendarSyncState.objects.bulk_create(
        [GoogleCalendarSyncState(calendar_id=pk) for pk in calendar_ids], ignore_conflicts=True
    )


def _claim(calendar_ids: Iterable[int], owner: str) -> set[int]:
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


def _release(calendar_ids: Iterable[int], owner: str) -> None:
    GoogleCalendarSyncState.objects.filter(
        pk__in=list(calendar_ids), channel_lease_owner=owner
    ).update(channel_lease_owner="", channel_lease_expires_at=None)


# --- Bookkeeping shared by the batches -----------------------------------------------------------


def _record_failures(failures: dict[int, str]) -> None:
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


def _record_unsupported(calendar_ids: set[int]) -> None:
    if calendar_ids:
        GoogleCalendarSyncState.objects.filter(pk__in=list(calendar_ids)).update(
            watch_unsupported=True, watch_unsupported_at=timezone.now()
        )
        logger.warning("google watch refused for good calendars=%d", len(calendar_ids))


def grant_revoked_mark(calendar_ids: set[int]) -> None:
    """The accounts of these calendars lost their grant (``invalid_grant``): stop watching
    and syncing them.

    The booking code records the revocation once per account (account and calendars marked
    disconnected, the subscriber emailed). Channels cannot be stopped at Google without a
    grant: they are stopped here (the webhook ignores them) and expire at Google.
    """
    if not calendar_ids:
        return
    from calendars.google_oauth import google_account_revoked_record

    now = timezone.now()
    account_ids = sorted(
        set(
            Calendar.objects.filter(
                pk__in=list(calendar_ids), google_account__isnull=False
            ).values_list("google_account_id", flat=True)
        )
    )
    for account_id in account_ids:
        google_account_revoked_record(account_id=account_id)
    affected_ids = list(
        Calendar.objects.filter(
            Q(pk__in=list(calendar_ids)) | Q(google_account_id__in=account_ids)
        ).values_list("pk", flat=True)
    )
    with transaction.atomic():
        GoogleCalendarChannel.objects.live().filter(calendar_id__in=affected_ids).update(
            state=ChannelState.STOPPED, stopped_at=now
        )
        _sync_states_ensure(affected_ids)
        GoogleCalendarSyncState.objects.filter(pk__in=affected_ids).update(
            grant_revoked_at=now, dirty=False, sync_pending=False, pending_since=None
        )
    logger.warning(
        "google grant revoked accounts=%d calendars=%d: channels torn down",
        len(account_ids),
        len(affected_ids),
    )


# --- Create (backfill and one calendar) ----------------------------------------------------------


def channels_backfill(
    *,
    calendar_ids: Sequence[int] | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: ProgressCallback | None = None,
) -> ChannelRunSummary:
    """A channel for every calendar to watch that lacks one (or for ``calendar_ids`` only).

    Idempotent: a calendar with a pending or active channel is left alone, so running it
    twice creates nothing the second time.
    """
    summary = ChannelRunSummary(dry_run=dry_run)
    candidates = selectors.calendars_lacking_channel()
    if calendar_ids is not None:
        candidates = candidates.filter(pk__in=list(calendar_ids))
    total = candidates.count()
    if calendar_ids is not None:
        # Asked for by id, but with a channel already or not to be watched.
        summary.skipped += len(set(calendar_ids)) - total
    done = 0
    last_pk = 0
    while True:
        batch = list(
            candidates.filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not batch:
            break
        last_pk = batch[-1]
        lines: tuple[str, ...] = ()
        if dry_run:
            summary.created += len(batch)
            lines = tuple(f"would create a channel for calendar {pk}" for pk in batch)
        else:
            summary.merge(_backfill_batch(batch, concurrency=concurrency))
        done += len(batch)
        if progress is not None:
            progress(BatchProgress(done=done, total=total, summary=summary, lines=lines))
    return summary


def _backfill_batch(calendar_ids: list[int], *, concurrency: int) -> ChannelRunSummary:
    summary = ChannelRunSummary()
    owner = uuid.uuid4().hex
    _sync_states_ensure(calendar_ids)
    claimed = _claim(calendar_ids, owner)
    summary.skipped += len(calendar_ids) - len(claimed)
    summary.busy += len(calendar_ids) - len(claimed)
    try:
        # Re-read under the claim: another run may have created the channel meanwhile.
        calendars = list(
            selectors.calendars_lacking_channel()
            .filter(pk__in=list(claimed))
            .select_related("google_account")
            .order_by("pk")
        )
        summary.skipped += len(claimed) - len(calendars)
        if not calendars:
            return summary
        now = timezone.now()
        # A pending row under our claim was left by a run that died: it never got its watch
        # response stored, so the webhook may forget it.
        GoogleCalendarChannel.objects.filter(
            calendar_id__in=[c.pk for c in calendars], state=ChannelState.PENDING
        ).update(state=ChannelState.STOPPED, stopped_at=now)
        pending = GoogleCalendarChannel.objects.bulk_create(
            [
                GoogleCalendarChannel(calendar=c, state=ChannelState.PENDING, created_at=now)
                for c in calendars
            ]
        )
        results = _run_bounded(
            [
                _WatchJob(
                    account=c.google_account,  # type: ignore[arg-type]
                    remote_id=c.remote_id,
                    channel_id=ch.channel_id,
                    token=ch.token,
                )
                for c, ch in zip(calendars, pending, strict=True)
            ],
            _watch,
            concurrency=concurrency,
        )
        activated, abandoned = _store_watch_results(pending, results, summary)
        summary.created += len(activated)
        _channels_store(activated=activated, abandoned=abandoned)
        # The first sync takes the initial sync token with a full listing.
        calendar_syncs_request({ch.calendar_id for ch in activated})
    finally:
        _release(claimed, owner)
    return summary


def _channels_store(
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


def _store_watch_results(
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
    _record_failures(failures)
    _record_unsupported(unsupported)
    grant_revoked_mark(revoked)
    if unsupported:
        # Calendars Google refuses to watch are kept in sync by the periodic reconciliation;
        # they get their first sync now.
        calendar_syncs_request(unsupported)
    return activated, abandoned


# --- Renew ---------------------------------------------------------------------------------------


def channels_renew(
    *,
    within: dt.timedelta,
    calendar_ids: Sequence[int] | None = None,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: ProgressCallback | None = None,
) -> ChannelRunSummary:
    """Replace the active channels that expire within ``within`` (make-before-break), and
    finish stopping the retiring ones whose stop failed earlier (of ``calendar_ids`` only
    when given)."""
    summary = ChannelRunSummary(dry_run=dry_run)
    cutoff = timezone.now() + within
    # Only the channels that exist now: their successors, created by this very run, may fall
    # within the window too and must not be renewed in turn.
    last_existing = GoogleCalendarChannel.objects.aggregate(last=Max("pk"))["last"] or 0
    candidates = selectors.channels_due(cutoff=cutoff).filter(pk__lte=last_existing)
    if calendar_ids is not None:
        candidates = candidates.filter(calendar_id__in=list(calendar_ids))
    total = candidates.count()
    done = 0
    last_pk = 0
    while True:
        batch = list(
            candidates.filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", "calendar_id", "state")[:batch_size]
        )
        if not batch:
            break
        last_pk = batch[-1][0]
        lines: tuple[str, ...] = ()
        if dry_run:
            renewals = [(pk, cal) for pk, cal, state in batch if state == ChannelState.ACTIVE]
            summary.renewed += len(renewals)
            summary.stopped += len(batch) - len(renewals)
            lines = tuple(
                f"would renew channel {pk} of calendar {cal}"
                if state == ChannelState.ACTIVE
                else f"would stop retiring channel {pk} of calendar {cal}"
                for pk, cal, state in batch
            )
        else:
            summary.merge(
                _renew_batch([(pk, cal) for pk, cal, _ in batch], cutoff, concurrency=concurrency)
            )
        done += len(batch)
        if progress is not None:
            progress(BatchProgress(done=done, total=total, summary=summary, lines=lines))
    return summary


def _renew_batch(
    rows: list[tuple[int, int]], cutoff: dt.datetime, *, concurrency: int
) -> ChannelRunSummary:
    summary = ChannelRunSummary()
    owner = uuid.uuid4().hex
    calendar_ids = {calendar_id for _, calendar_id in rows}
    _sync_states_ensure(calendar_ids)
    claimed = _claim(calendar_ids, owner)
    try:
        busy = sum(1 for _, calendar_id in rows if calendar_id not in claimed)
        summary.skipped += busy
        summary.busy += busy
        channels = list(
            GoogleCalendarChannel.objects.filter(
                pk__in=[pk for pk, calendar_id in rows if calendar_id in claimed]
            )
            .select_related("calendar__google_account")
            .order_by("pk")
        )
        watched = set(
            selectors.calendars_to_watch().filter(pk__in=list(claimed)).values_list("pk", flat=True)
        )
        now = timezone.now()
        to_renew: list[GoogleCalendarChannel] = []
        to_stop: list[GoogleCalendarChannel] = []
        for channel in channels:
            due = channel.expiration is None or channel.expiration < cutoff
            if channel.state == ChannelState.RETIRING:
                to_stop.append(channel)
            elif channel.state != ChannelState.ACTIVE or not due:
                summary.skipped += 1  # renewed or stopped by another run meanwhile
            elif channel.calendar_id in watched:
                to_renew.append(channel)
            else:
                to_stop.append(channel)  # no schedule uses the calendar any more

        renewed_old = _renew_channels(to_renew, summary, now=now, concurrency=concurrency)
        to_stop.extend(renewed_old)
        _stop_channels(to_stop, summary, concurrency=concurrency, counted=set(renewed_old))
    finally:
        _release(claimed, owner)
    return summary


def _renew_channels(
    old_channels: list[GoogleCalendarChannel],
    summary: ChannelRunSummary,
    *,
    now: dt.datetime,
    concurrency: int,
) -> list[GoogleCalendarChannel]:
    """Create and store a successor for each channel; returns the old channels to stop."""
    if not old_channels:
        return []
    calendar_ids = [old.calendar_id for old in old_channels]
    GoogleCalendarChannel.objects.filter(
        calendar_id__in=calendar_ids, state=ChannelState.PENDING
    ).update(state=ChannelState.STOPPED, stopped_at=now)
    pending = GoogleCalendarChannel.objects.bulk_create(
        [
            GoogleCalendarChannel(
                calendar_id=old.calendar_id, state=ChannelState.PENDING, created_at=now
            )
            for old in old_channels
        ]
    )
    results = _run_bounded(
        [
            _WatchJob(
                account=old.calendar.google_account,  # type: ignore[arg-type]
                remote_id=old.calendar.remote_id,
                channel_id=new.channel_id,
                token=new.token,
            )
            for old, new in zip(old_channels, pending, strict=True)
        ],
        _watch,
        concurrency=concurrency,
    )
    activated, abandoned = _store_watch_results(pending, results, summary)
    activated_calendars = {ch.calendar_id for ch in activated}
    replaced = [old for old in old_channels if old.calendar_id in activated_calendars]
    for old in replaced:
        old.state = ChannelState.RETIRING
        old.renewed_at = now
    _channels_store(activated=activated, abandoned=abandoned, retiring=replaced)
    summary.renewed += len(replaced)
    # A channel that had expired before its successor existed may have missed notifications.
    calendar_syncs_request(
        {old.calendar_id for old in replaced if old.expiration and old.expiration < now}
    )
    return replaced


def _stop_channels(
    channels: list[GoogleCalendarChannel],
    summary: ChannelRunSummary,
    *,
    concurrency: int,
    counted: set[GoogleCalendarChannel] | None = None,
) -> None:
    """Stop channels at Google (404 means done) and mark them stopped; a failed stop leaves the
    channel retiring, to be stopped by the next run."""
    if not channels:
        return
    counted = counted or set()
    # Retiring first: if this run dies before the stop, the next run finishes it.
    not_yet_retiring = [ch for ch in channels if ch.state != ChannelState.RETIRING]
    for channel in not_yet_retiring:
        channel.state = ChannelState.RETIRING
    if not_yet_retiring:
        GoogleCalendarChannel.objects.filter(pk__in=[ch.pk for ch in not_yet_retiring]).update(
            state=ChannelState.RETIRING
        )
    results = _run_bounded(
        [
            _StopJob(
                account=ch.calendar.google_account,
                channel_id=ch.channel_id,
                resource_id=ch.resource_id,
            )
            for ch in channels
        ],
        _stop,
        concurrency=concurrency,
    )
    now = timezone.now()
    stopped: list[int] = []
    failures: dict[int, str] = {}
    revoked: set[int] = set()
    for channel, result in zip(channels, results, strict=True):
        if result.outcome in (CallOutcome.OK, CallOutcome.GONE, CallOutcome.REVOKED):
            # Without a grant a channel cannot be stopped at Google: it is stopped here (the
            # webhook ignores it) and expires there.
            stopped.append(channel.pk)
            if channel not in counted:
                summary.stopped += 1
            if result.outcome == CallOutcome.REVOKED:
                revoked.add(channel.calendar_id)
        else:
            failures[channel.calendar_id] = f"stop: {result.reason}"
            summary.fail(channel.calendar_id, f"stop: {result.reason}", transient=result.transient)
    GoogleCalendarChannel.objects.filter(pk__in=stopped).update(
        state=ChannelState.STOPPED, stopped_at=now
    )
    _record_failures(failures)
    grant_revoked_mark(revoked)


# --- Tear down -----------------------------------------------------------------------------------


def channels_teardown(
    *,
    calendar_ids: Sequence[int] | None = None,
    force: bool = False,
    dry_run: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: ProgressCallback | None = None,
) -> ChannelRunSummary:
    """Stop the live channels of calendars that must no longer be watched (of
    ``calendar_ids`` only when given; with ``force``, whether or not they are to be watched:
    the caller decided, as when an account is being disconnected)."""
    summary = ChannelRunSummary(dry_run=dry_run)
    candidates = GoogleCalendarChannel.objects.live() if force else selectors.channels_orphaned()
    if calendar_ids is not None:
        candidates = candidates.filter(calendar_id__in=list(calendar_ids))
    total = candidates.count()
    done = 0
    last_pk = 0
    while True:
        batch = list(
            candidates.filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", "calendar_id")[:batch_size]
        )
        if not batch:
            break
        last_pk = batch[-1][0]
        lines: tuple[str, ...] = ()
        if dry_run:
            summary.stopped += len(batch)
            lines = tuple(f"would stop channel {pk} of calendar {cal}" for pk, cal in batch)
        else:
            summary.merge(_teardown_batch(batch, force=force, concurrency=concurrency))
        done += len(batch)
        if progress is not None:
            progress(BatchProgress(done=done, total=total, summary=summary, lines=lines))
    return summary


def _teardown_batch(
    rows: list[tuple[int, int]], *, force: bool, concurrency: int
) -> ChannelRunSummary:
    summary = ChannelRunSummary()
    owner = uuid.uuid4().hex
    calendar_ids = {calendar_id for _, calendar_id in rows}
    _sync_states_ensure(calendar_ids)
    claimed = _claim(calendar_ids, owner)
    try:
        busy = sum(1 for _, calendar_id in rows if calendar_id not in claimed)
        summary.skipped += busy
        summary.busy += busy
        # Re-read under the claim: the calendar may have become a schedule's calendar again.
        channels = list(
            (GoogleCalendarChannel.objects.live() if force else selectors.channels_orphaned())
            .filter(pk__in=[pk for pk, calendar_id in rows if calendar_id in claimed])
            .select_related("calendar__google_account")
            .order_by("pk")
        )
        summary.skipped += sum(1 for _, c in rows if c in claimed) - len(channels)
        _stop_channels(channels, summary, concurrency=concurrency)
    finally:
        _release(claimed, owner)
    return summary
