"""``backfill_google_channels`` and ``renew_google_channels`` against the fake Google server."""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections import Counter
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from gcal_push.channels import channels_backfill
from gcal_push.models import ChannelState, GoogleCalendarChannel, GoogleCalendarSyncState
from tests.fakes.google_calendar import Change, FakeGoogleCalendar
from tests.fakes.google_push import ClientTransport, GooglePushEmitter
from tests.fixtures import TaskQueue, channels_seed, owner_create, watched_create

pytestmark = pytest.mark.django_db(transaction=True)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(command: str, *args: str, tty: bool = False) -> tuple[str, str, int]:
    """Run a command; returns (stdout, stderr, exit status)."""
    out: io.StringIO = Terminal() if tty else io.StringIO()
    err = io.StringIO()
    try:
        call_command(command, *args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue() + str(exc), exc.returncode
    return out.getvalue(), err.getvalue(), 0


def active_by_calendar() -> Counter[int]:
    return Counter(
        GoogleCalendarChannel.objects.filter(state=ChannelState.ACTIVE).values_list(
            "calendar_id", flat=True
        )
    )


def test_dry_run_changes_nothing_and_calls_nothing_when_channels_are_missing(
    google: FakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    calendars = watched_create(google, owner_create(google), count=3)
    before = len(google.requests)
    out, _err, status = run("backfill_google_channels", "--dry-run")
    assert status == 0
    for watched in calendars:
        assert f"would create a channel for calendar {watched.calendar.pk}" in out
    assert "Summary (dry run, nothing changed): created 3" in out
    assert not GoogleCalendarChannel.objects.exists()
    assert len(google.requests) == before


def test_renew_dry_run_changes_nothing_when_channels_expire(
    google: FakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched_create(google, owner_create(google), count=3)
    channels_backfill()
    before = list(
        GoogleCalendarChannel.objects.order_by("pk").values_list("pk", "state", "channel_id")
    )
    requests = len(google.requests)
    out, _err, status = run("renew_google_channels", "--dry-run", "--within", "720")
    assert status == 0
    assert out.count("would renew channel") == 3
    assert "renewed 3" in out
    assert (
        list(GoogleCalendarChannel.objects.order_by("pk").values_list("pk", "state", "channel_id"))
        == before
    )
    assert len(google.requests) == requests


def test_backfill_creates_nothing_the_second_time_when_run_twice(
    google: FakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    owner = owner_create(google)
    watched_create(google, owner, count=5)
    out, _err, status = run("backfill_google_channels")
    assert status == 0
    assert "Summary: created 5, renewed 0, stopped 0, skipped 0, failed 0" in out
    out, _err, status = run("backfill_google_channels")
    assert status == 0
    assert "Summary: created 0, renewed 0, stopped 0, skipped 0, failed 0" in out
    assert len(google.requests_for("events.watch")) == 5
    assert set(active_by_calendar().values()) == {1}


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise(
    google: FakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched_create(google, owner_create(google), count=5)
    out, _err, _status = run("backfill_google_channels", "--dry-run", "--batch-size", "2", tty=True)
    assert "\r[" in out and "] 5/5 " in out
    out, _err, _status = run("backfill_google_channels", "--dry-run", "--batch-size", "2")
    assert "\r" not in out
    assert [line for line in out.splitlines() if " done: " in line] == [
        "2/5 done: created 2, renewed 0, stopped 0, skipped 0, failed 0",
        "4/5 done: created 4, renewed 0, stopped 0, skipped 0, failed 0",
        "5/5 done: created 5, renewed 0, stopped 0, skipped 0, failed 0",
    ]


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("renew_google_channels", ["--within", "-1"], "--within: must be more than 0"),
        ("renew_google_channels", ["--within", "0"], "--within: must be more than 0"),
        ("renew_google_channels", ["--within", "nan"], "--within: must be more than 0"),
        ("renew_google_channels", ["--within", "1e9"], "--within: must be more than 0"),
        ("renew_google_channels", ["--within", "soon"], "is not a number of hours"),
        ("backfill_google_channels", ["--batch-size", "0"], "--batch-size: must be between"),
        ("backfill_google_channels", ["--concurrency", "999"], "--concurrency: must be between"),
        ("backfill_google_channels", ["--concurrency", "x" * 10_000], "is not a whole number"),
        ("backfill_google_channels", ["--unknown"], "unrecognized arguments"),
    ],
)
def test_bad_option_is_refused_with_a_clear_message_when_given(
    google: FakeGoogleCalendar, command: str, args: list[str], message: str
) -> None:
    watched_create(google, owner_create(google))
    with pytest.raises(CommandError, match=message):
        call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert not GoogleCalendarChannel.objects.exists()
    assert google.requests == []


def test_renewal_of_2000_channels_costs_constant_queries_per_batch_and_leaves_no_gap(
    google: FakeGoogleCalendar,
    task_queue: TaskQueue,
    django_assert_max_num_queries: Any,
) -> None:
    owner = owner_create(google)
    watched = watched_create(google, owner, count=2000)
    channels_seed(google, watched, expires_in=dt.timedelta(hours=10))
    old = dict(GoogleCalendarChannel.objects.values_list("calendar_id", "channel_id"))

    # The fake tells us about every channel created and stopped: at each stop, the calendar
    # must still have another live channel at Google.
    live: dict[str, set[str]] = {w.remote_id: {old[w.calendar.pk]} for w in watched}
    gaps: list[str] = []

    def no_gap(change: Change) -> None:
        if change.kind == "channel_created":
            live[change.calendar_id].add(change.channel_id or "")
        elif change.kind == "channel_stopped":
            live[change.calendar_id].discard(change.channel_id or "")
            if not live[change.calendar_id]:
                gaps.append(change.calendar_id)

    remove = google.listener_add(no_gap)
    per_batch: list[int] = []
    try:
        with django_assert_max_num_queries(10 * 25 + 5) as captured:

            def progress(event: Any) -> None:
                per_batch.append(len(captured.captured_queries) - sum(per_batch))

            from gcal_push.channels import channels_renew

            summary = channels_renew(
                within=dt.timedelta(hours=24), batch_size=200, concurrency=8, progress=progress
            )
    finally:
        remove()
    assert (summary.renewed, summary.failed, summary.skipped) == (2000, 0, 0)
    assert gaps == []
    # Every batch of 200 costs the same handful of queries, the first one aside (a count).
    assert len(per_batch) == 10
    assert max(per_batch[1:]) <= 25 and len(set(per_batch[1:])) == 1
    assert set(active_by_calendar().values()) == {1}
    assert len(active_by_calendar()) == 2000
    new = dict(
        GoogleCalendarChannel.objects.filter(state=ChannelState.ACTIVE).values_list(
            "calendar_id", "channel_id"
        )
    )
    assert not set(new.values()) & set(old.values())
    assert GoogleCalendarChannel.objects.filter(state=ChannelState.STOPPED).count() == 2000
    # At Google: exactly the new channel of each calendar is live, and each new channel was
    # watched before its predecessor was stopped (make-before-break).
    at_google = {c.calendar_id: c.id for c in google.live_channels()}
    assert at_google == {w.remote_id: new[w.calendar.pk] for w in watched}
    order = {
        (r.operation, r.body["id"]): index
        for index, r in enumerate(google.requests)
        if r.operation in ("events.watch", "channels.stop")
    }
    assert all(
        order[("events.watch", new[w.calendar.pk])] < order[("channels.stop", old[w.calendar.pk])]
        for w in watched
    )


def test_one_failing_channel_does_not_stop_the_others_and_exits_1_when_renewing(
    google: FakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched = watched_create(google, owner_create(google), count=6)
    channels_backfill()
    old = dict(GoogleCalendarChannel.objects.values_list("calendar_id", "pk"))
    google.fault_add(operation="events.watch", status=404, reason="notFound")
    out, err, status = run("renew_google_channels", "--within", "720", "--batch-size", "4")
    assert status == 1
    assert "Summary: created 0, renewed 5, stopped 0, skipped 0, failed 1" in out
    assert "failed: calendar" in err and "notFound" in err
    assert "1 channel operation(s) failed" in err
    # The calendar whose renewal failed keeps its old channel, live and active.
    assert set(active_by_calendar().values()) == {1}
    kept = [
        w
        for w in watched
        if GoogleCalendarChannel.objects.get(calendar=w.calendar, state=ChannelState.ACTIVE).pk
        == old[w.calendar.pk]
    ]
    assert len(kept) == 1
    assert len(google.live_channels(kept[0].remote_id)) == 1
    state = GoogleCalendarSyncState.objects.get(pk=kept[0].calendar.pk)
    assert (state.failure_count, state.last_error) == (1, "notFound")
    # The next run renews it.
    out, _err, status = run("renew_google_channels", "--within", "720")
    assert status == 0
    assert "renewed 6" in out  # the five new ones are within 720 hours too


def test_concurrent_backfills_create_no_extra_channel_when_they_overlap(
    google: FakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched = watched_create(google, owner_create(google), count=3)
    second_runs: list[Any] = []

    def run_again_during_the_first_watch(change: Change) -> None:
        # While the first run waits for Google's answer to its first watch, a second run
        # starts (from the fake's request thread, with its own database connection).
        if change.kind == "channel_created" and not second_runs:
            second_runs.append(None)
            try:
                second_runs[0] = channels_backfill(concurrency=1)
            finally:
                connection.close()

    remove = google.listener_add(run_again_during_the_first_watch)
    try:
        first = channels_backfill(concurrency=1)
    finally:
        remove()
    second = second_runs[0]
    assert first.created == 3
    # The second run found the first run's channels being created: it made nothing.
    assert (second.created, second.failed) == (0, 0)
    assert active_by_calendar() == Counter({w.calendar.pk: 1 for w in watched})
    assert len(google.requests_for("events.watch")) == 3


def test_calendars_claimed_by_another_run_are_skipped_until_its_lease_expires(
    google: FakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched = watched_create(google, owner_create(google), count=4)
    claimed = [w.calendar.pk for w in watched[:2]]
    GoogleCalendarSyncState.objects.bulk_create(
        [GoogleCalendarSyncState(calendar_id=w.calendar.pk) for w in watched]
    )
    GoogleCalendarSyncState.objects.filter(pk__in=claimed).update(
        channel_lease_owner="another-run",
        channel_lease_expires_at=timezone.now() + dt.timedelta(minutes=5),
    )
    out, _err, status = run("backfill_google_channels")
    assert status == 0
    assert "Summary: created 2, renewed 0, stopped 0, skipped 2, failed 0" in out
    assert set(active_by_calendar()) == {w.calendar.pk for w in watched[2:]}
    # A run that died keeps nothing locked for ever: its lease expires.
    GoogleCalendarSyncState.objects.filter(pk__in=claimed).update(
        channel_lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    out, _err, status = run("backfill_google_channels")
    assert "Summary: created 2, renewed 0, stopped 0, skipped 0, failed 0" in out
    assert active_by_calendar() == Counter({w.calendar.pk: 1 for w in watched})


@pytest.mark.postgres_only
def test_parallel_backfills_and_renewals_create_exactly_one_channel_per_calendar(
    google: FakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched = watched_create(google, owner_create(google), count=120)
    barrier = threading.Barrier(4)
    summaries: list[Any] = []

    def work(kind: str) -> None:
        try:
            barrier.wait(timeout=10)
            if kind == "backfill":
                summaries.append(channels_backfill(batch_size=20, concurrency=4))
            else:
                from gcal_push.channels import channels_renew

                summaries.append(channels_renew(within=dt.timedelta(days=30), batch_size=20))
        finally:
            connection.close()

    threads = [
        threading.Thread(target=work, args=(kind,))
        for kind in ("backfill", "backfill", "backfill", "renew")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(summary.failed == 0 for summary in summaries)
    channels_backfill()  # whatever a busy calendar skipped
    assert active_by_calendar() == Counter({w.calendar.pk: 1 for w in watched})
    live = Counter(c.calendar_id for c in google.live_channels())
    assert live == Counter({w.remote_id: 1 for w in watched})
    assert GoogleCalendarChannel.objects.filter(state=ChannelState.PENDING).count() == 0


def test_both_channels_deliver_and_are_accepted_when_a_change_falls_in_the_overlap(
    google: FakeGoogleCalendar, task_queue: TaskQueue
) -> None:
    watched = watched_create(google, owner_create(google))[0]
    channels_backfill()
    [old] = GoogleCalendarChannel.objects.filter(state=ChannelState.ACTIVE)
    task_queue.purge()
    GoogleCalendarSyncState.objects.filter(pk=watched.calendar.pk).update(sync_pending=False)
    emitter = GooglePushEmitter(google, ClientTransport()).start()

    def change_during_the_overlap(change: Change) -> None:
        # Google has created the new channel; the old one is not stopped yet. A change now is
        # notified on both.
        if change.kind == "channel_created":
            google.event_seed(
                watched.remote_id,
                {
                    "summary": "Meanwhile",
                    "start": {"dateTime": "2030-01-01T10:00:00Z"},
                    "end": {"dateTime": "2030-01-01T10:30:00Z"},
                },
            )

    remove = google.listener_add(change_during_the_overlap)
    try:
        out, _err, status = run("renew_google_channels", "--within", "720")
    finally:
        remove()
        emitter.stop()
    assert status == 0 and "renewed 1" in out
    [new] = GoogleCalendarChannel.objects.filter(state=ChannelState.ACTIVE)
    assert emitter.states() == [
        (new.channel_id, "sync", 200),
        (old.channel_id, "exists", 200),
        (new.channel_id, "exists", 200),
    ]
    # Both notifications were verified and coalesced into one queued sync.
    assert task_queue.size() == 1
    assert GoogleCalendarSyncState.objects.get(pk=watched.calendar.pk).dirty
