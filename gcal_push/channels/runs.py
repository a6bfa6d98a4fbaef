"""The channel runs: create (backfill), renew, tear down, batch by batch.

Each batch claims its calendars, re-reads them under the claim, calls Google on the bounded
pool and records the outcome in a constant number of queries (see :mod:`gcal_push.channels`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from django.db.models import Max
from django.utils import timezone

from calendars.batching import keyset_batches
from gcal_push import selectors
from gcal_push.channels.calls import CallOutcome, StopJob, WatchJob, run_bounded, stop, watch
from gcal_push.channels.records import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    BatchProgress,
    ChannelRunSummary,
    ProgressCallback,
    channels_store,
    claim,
    record_failures,
    release,
    sync_states_ensure,
    watch_results_store,
)
from gcal_push.models import ChannelState, GoogleCalendarChannel
from gcal_push.notifications import calendar_syncs_request
from gcal_push.revocation import google_calendars_revoked

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
    for batch in keyset_batches(candidates, batch_size=batch_size, fields=("pk",)):
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
    sync_states_ensure(calendar_ids)
    claimed = claim(calendar_ids, owner)
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
        results = run_bounded(
            [
                WatchJob(
                    account=c.google_account,  # type: ignore[arg-type]
                    remote_id=c.remote_id,
                    channel_id=ch.channel_id,
                    token=ch.token,
                )
                for c, ch in zip(calendars, pending, strict=True)
            ],
            watch,
            concurrency=concurrency,
        )
        activated, abandoned = watch_results_store(pending, results, summary)
        summary.created += len(activated)
        channels_store(activated=activated, abandoned=abandoned)
        # The first sync takes the initial sync token with a full listing.
        calendar_syncs_request({ch.calendar_id for ch in activated})
    finally:
        release(claimed, owner)
    return summary


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
    for batch in keyset_batches(
        candidates, batch_size=batch_size, fields=("pk", "calendar_id", "state")
    ):
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
    sync_states_ensure(calendar_ids)
    claimed = claim(calendar_ids, owner)
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
        release(claimed, owner)
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
    results = run_bounded(
        [
            WatchJob(
                account=old.calendar.google_account,  # type: ignore[arg-type]
                remote_id=old.calendar.remote_id,
                channel_id=new.channel_id,
                token=new.token,
            )
            for old, new in zip(old_channels, pending, strict=True)
        ],
        watch,
        concurrency=concurrency,
    )
    activated, abandoned = watch_results_store(pending, results, summary)
    activated_calendars = {ch.calendar_id for ch in activated}
    replaced = [old for old in old_channels if old.calendar_id in activated_calendars]
    for old in replaced:
        old.state = ChannelState.RETIRING
        old.renewed_at = now
    channels_store(activated=activated, abandoned=abandoned, retiring=replaced)
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
    results = run_bounded(
        [
            StopJob(
                account=ch.calendar.google_account,
                channel_id=ch.channel_id,
                resource_id=ch.resource_id,
            )
            for ch in channels
        ],
        stop,
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
    record_failures(failures)
    google_calendars_revoked(revoked)


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
    for batch in keyset_batches(candidates, batch_size=batch_size, fields=("pk", "calendar_id")):
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
    sync_states_ensure(calendar_ids)
    claimed = claim(calendar_ids, owner)
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
        release(claimed, owner)
    return summary
