"""Google push notifications at scale (``make bench-push``).

Runs the fake Google Calendar server of the tests (``tests/fakes/google_calendar.py``) in this
process on 127.0.0.1 and Convoke on a fresh SQLite file and the filesystem broker (or on
``DATABASE_URL`` / ``CELERY_BROKER_URL`` when set: point them at scratch ones), then measures:

1. **Webhook**: gunicorn serves ``POST /webhooks/google-calendar/``; C concurrent clients post
   N notifications with Google's headers over M channels (one in twenty with a wrong token).
   Prints acknowledgements per second and the p50/p95/p99 latency. No worker runs: what is
   measured is the acknowledgement alone.
2. **Coalescing**: gunicorn and a Celery worker; bursts of B notifications, each burst for one
   calendar right after a change at the fake, sent by C concurrent clients, for 1,000
   notifications in all. Prints the ``events.list`` calls Google received per 1,000
   notifications (with the default debounce, ``GOOGLE_SYNC_DEBOUNCE_SECONDS``).
3. **Renewal**: R channels expiring within the next hours; ``channels_renew`` renews them in
   this process (batches of 200, 8 Google calls at once). Prints the seconds, the number of
   database queries (in all and per batch) and the calls Google received. Then
   ``manage.py renew_google_channels`` renews the same R channels again in a process of its
   own, whose peak resident memory is printed next to that of the same command with nothing
   to renew.

Everything listens on 127.0.0.1 and every loop is bounded by its count and --max-seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

PROJECT_DIR = Path(__file__).resolve().parent.parent

from stack import Stack, free_port, wait_healthy  # noqa: E402  (bench/ is the script's folder)

sys.path.insert(0, str(PROJECT_DIR))

from tests.fakes.google_calendar import FakeChannel, FakeGoogleCalendar  # noqa: E402

WEBHOOK_PATH = "/webhooks/google-calendar/"
WEBHOOK_URL = "https://convoke.bench.invalid/webhooks/google-calendar/"
SUBJECT = "300000000000000001"
OWNER_EMAIL = "bench-owner@example.org"


# --- processes ------------------------------------------------------------------------------------


def gunicorn(stack: Stack, port: int, workers: int) -> None:
    stack.spawn(
        sys.executable,
        "-m",
        "gunicorn",
        "calendars.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        log="gunicorn.log",
    )
    wait_healthy(port)


def environment_for(scratch: Path, fake: FakeGoogleCalendar) -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(fake.django_settings())
    environment.update(
        {
            "DEBUG": "false",
            "DJANGO_SETTINGS_MODULE": "calendars.settings",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CALDAV_INBOUND_API_KEY": secrets.token_urlsafe(32),
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "APP_URL": "http://127.0.0.1",
            "GOOGLE_WEBHOOK_URL": WEBHOOK_URL,
            "GOOGLE_API_BACKOFF_SECONDS": "0.05",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    environment.pop("CELERY_TASK_ALWAYS_EAGER", None)
    if not environment.get("DATABASE_URL"):
        environment["DATABASE_URL"] = f"sqlite:///{scratch / 'bench.sqlite3'}"
    if not environment.get("CELERY_BROKER_URL"):
        environment["CELERY_FILESYSTEM_DIR"] = str(scratch / "celery")
    return environment


# --- data ---------------------------------------------------------------------------------------


@dataclass
class Setup:
    fake: FakeGoogleCalendar
    user: Any
    account: Any
    made: int = 0


def owner_setup(fake: FakeGoogleCalendar) -> Setup:
    from calendars.models import GoogleAccount, User
    from calendars.providers import google

    fake.account_add(subject=SUBJECT, email=OWNER_EMAIL)
    access, refresh = fake.tokens_issue(subject=SUBJECT, scopes=google.SCOPES)
    user = User.objects.create_user(email=OWNER_EMAIL, password=None, full_name="Bench")
    # An encrypted JSON field: stored as a document, typed as text by the stubs.
    credentials: Any = google.credentials_document(
        token=access, refresh_token=refresh, expiry=None, scopes=google.SCOPES
    )
    account = GoogleAccount.objects.create(
        owner=user, subject=SUBJECT, credentials=credentials, scopes=list(google.SCOPES)
    )
    return Setup(fake=fake, user=user, account=account)


def watched_calendars(setup: Setup, count: int, *, expires_in: dt.timedelta) -> list[Any]:
    """``count`` calendars of the owner, each a schedule's calendar with an active channel,
    in the database and at the fake (bulk, a few thousand a second)."""
    from django.utils import timezone

    from calendars.models import Calendar, Provider, Schedule
    from gcal_push.models import ChannelState, GoogleCalendarChannel, GoogleCalendarSyncState

    start = setup.made
    setup.made += count
    remote_ids = [f"bench{start + i:06d}@group.calendar.google.com" for i in range(count)]
    for remote_id in remote_ids:
        setup.fake.calendar_add(calendar_id=remote_id, subject=SUBJECT)
    calendars = Calendar.objects.bulk_create(
        [
            Calendar(
                owner=setup.user,
                provider=Provider.GOOGLE,
                remote_id=remote_id,
                google_account=setup.account,
            )
            for remote_id in remote_ids
        ],
        batch_size=500,
    )
    Schedule.objects.bulk_create(
        [
            Schedule(owner=setup.user, calendar=c, slug=f"bench-{c.pk}", title="Bench")
            for c in calendars
        ],
        batch_size=500,
    )
    GoogleCalendarSyncState.objects.bulk_create(
        [GoogleCalendarSyncState(calendar=c) for c in calendars], batch_size=500
    )
    now = timezone.now()
    channels = GoogleCalendarChannel.objects.bulk_create(
        [
            GoogleCalendarChannel(
                calendar=c,
                resource_id=f"bench-resource-{c.pk}",
                expiration=now + expires_in,
                state=ChannelState.ACTIVE,
            )
            for c in calendars
        ],
        batch_size=500,
    )
    for calendar, channel in zip(calendars, channels, strict=True):
        setup.fake.channels[channel.channel_id] = FakeChannel(
            id=channel.channel_id,
            resource_id=channel.resource_id,
            resource_uri=f"{setup.fake.api_endpoint}calendars/{calendar.remote_id}/events",
            calendar_id=calendar.remote_id,
            address=WEBHOOK_URL,
            token=channel.token,
            expiration_ms=int((now + expires_in).timestamp() * 1000),
            subject=SUBJECT,
            created_at=now,
        )
    return channels


# --- posting notifications ----------------------------------------------------------------------


def headers_for(
    channel: Any, number: int, *, state: str = "exists", token: str = ""
) -> dict[str, str]:
    return {
        "X-Goog-Channel-ID": channel.channel_id,
        "X-Goog-Channel-Token": token or channel.token,
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-State": state,
        "X-Goog-Resource-URI": "https://www.googleapis.com/calendar/v3/calendars/x/events",
        "X-Goog-Message-Number": str(number),
        "User-Agent": "APIs-Google",
        "Content-Length": "0",
    }


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0


def post_all(
    port: int, requests: list[dict[str, str]], concurrency: int, max_seconds: float
) -> Load:
    load = Load()
    lock = threading.Lock()
    cursor = iter(range(len(requests)))
    deadline = time.monotonic() + max_seconds

    def client() -> None:
        while time.monotonic() < deadline:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            started = time.perf_counter()
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("POST", WEBHOOK_PATH, body=b"", headers=requests[index])
                status = connection.getresponse().status
                connection.close()
            except OSError:
                status = 0
            elapsed = time.perf_counter() - started
            with lock:
                load.latencies.append(elapsed)
                load.statuses[status] = load.statuses.get(status, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max_seconds + 30)
    load.seconds = time.perf_counter() - started
    return load


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def wait_for(predicate: Callable[[], bool], *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


# --- the three parts ------------------------------------------------------------------------------


def bench_webhook(setup: Setup, stack: Stack, options: argparse.Namespace) -> None:
    channels = watched_calendars(setup, options.channels, expires_in=dt.timedelta(days=6))
    port = free_port()
    gunicorn(stack, port, options.web_workers)
    warmup = [headers_for(channels[i % len(channels)], 2 + i) for i in range(100)]
    post_all(port, warmup, options.concurrency, options.max_seconds)
    requests = [
        headers_for(
            channels[i % len(channels)],
            200 + i,
            token="wrong-token" if i % 20 == 0 else "",
        )
        for i in range(options.notifications)
    ]
    load = post_all(port, requests, options.concurrency, options.max_seconds)
    stack.stop()
    done = len(load.latencies)
    print(
        f"webhook: {done} notifications over {len(channels)} channels, {options.concurrency} "
        f"clients, gunicorn {options.web_workers} sync workers"
    )
    print(
        f"  acknowledged/s {done / load.seconds:.1f}   "
        f"p50 {percentile(load.latencies, 0.5) * 1000:.1f} ms   "
        f"p95 {percentile(load.latencies, 0.95) * 1000:.1f} ms   "
        f"p99 {percentile(load.latencies, 0.99) * 1000:.1f} ms   statuses {load.statuses}"
    )


def bench_coalescing(setup: Setup, stack: Stack, options: argparse.Namespace) -> None:
    from django.conf import settings

    from gcal_push.models import GoogleCalendarSyncState
    from gcal_push.sync import calendar_sync

    bursts = max(1, 1000 // options.burst_size)
    channels = watched_calendars(setup, bursts, expires_in=dt.timedelta(days=6))
    for channel in channels:
        calendar_sync(calendar_id=channel.calendar_id)  # the initial sync token
    calendar_ids = [channel.calendar_id for channel in channels]
    port = free_port()
    gunicorn(stack, port, options.web_workers)
    stack.spawn(
        sys.executable,
        "-m",
        "celery",
        "-A",
        "calendars",
        "worker",
        "--concurrency",
        "2",
        "--without-heartbeat",
        "--without-mingle",
        "--without-gossip",
        "--loglevel",
        "WARNING",
        log="worker.log",
    )
    remote_ids = {setup.fake.channels[c.channel_id].calendar_id for c in channels}

    def burst_lists() -> int:
        # Only these calendars: the first part's calendars have syncs queued too.
        return sum(1 for r in setup.fake.requests_for("events.list") if r.calendar_id in remote_ids)

    lists_before = burst_lists()
    started = time.perf_counter()
    sent = 0
    statuses: dict[int, int] = {}
    for index, channel in enumerate(channels):
        remote_id = setup.fake.channels[channel.channel_id].calendar_id
        moment = dt.datetime.now(dt.UTC) + dt.timedelta(days=3, hours=index)
        setup.fake.event_seed(
            remote_id,
            {
                "summary": "Changed",
                "start": {"dateTime": moment.isoformat()},
                "end": {"dateTime": (moment + dt.timedelta(minutes=30)).isoformat()},
            },
        )
        burst = [headers_for(channel, 2 + n) for n in range(options.burst_size)]
        load = post_all(port, burst, options.concurrency, options.max_seconds)
        sent += len(load.latencies)
        for status, count in load.statuses.items():
            statuses[status] = statuses.get(status, 0) + count

    def settled() -> bool:
        states = GoogleCalendarSyncState.objects.filter(pk__in=calendar_ids)
        return (
            not states.filter(sync_pending=True).exists() and not states.filter(dirty=True).exists()
        )

    ok = wait_for(settled, timeout=options.max_seconds)
    seconds = time.perf_counter() - started
    stack.stop()
    lists = burst_lists() - lists_before
    print(
        f"coalescing: {bursts} bursts of {options.burst_size} notifications ({sent} sent, "
        f"statuses {statuses}), each after one change, debounce "
        f"{settings.GOOGLE_SYNC_DEBOUNCE_SECONDS:g} s, Celery worker concurrency 2"
    )
    print(
        f"  events.list calls {lists}: {lists * 1000 / max(sent, 1):.1f} per 1,000 "
        f"notifications; all synced: {ok}; {seconds:.1f} s"
    )


def google_call_metrics() -> int:
    """The total of ``convoke_google_calls`` over every process, as ``/metrics`` shows it."""
    from prometheus_client.parser import text_string_to_metric_families

    from calendars.metrics import metrics_render

    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(metrics_render().decode())
            for sample in family.samples
            if sample.name == "convoke_google_calls_total"
        )
    )


def bench_renewal(setup: Setup, stack: Stack, options: argparse.Namespace) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from gcal_push.channels import BatchProgress, channels_renew
    from gcal_push.models import ChannelState, GoogleCalendarChannel

    count = options.renew_channels
    watched_calendars(setup, count, expires_in=dt.timedelta(hours=5))
    calls_before = len(setup.fake.requests)
    metric_before = google_call_metrics()
    per_batch: list[int] = []
    with CaptureQueriesContext(connection) as captured:

        def progress(event: BatchProgress) -> None:
            per_batch.append(len(captured.captured_queries) - sum(per_batch))

        started = time.perf_counter()
        summary = channels_renew(
            within=dt.timedelta(hours=24),
            batch_size=options.batch_size,
            concurrency=options.google_concurrency,
            progress=progress,
        )
        seconds = time.perf_counter() - started
    calls = setup.fake.requests[calls_before:]
    watches = sum(1 for r in calls if r.operation == "events.watch")
    stops = sum(1 for r in calls if r.operation == "channels.stop")
    active = GoogleCalendarChannel.objects.filter(state=ChannelState.ACTIVE).count()
    metric_updates = google_call_metrics() - metric_before
    print(
        f"renewal: {summary.renewed} of {count} channels renewed ({summary.failed} failed) in "
        f"{seconds:.1f} s, {summary.renewed / seconds:.0f} channels/s, batches of "
        f"{options.batch_size}, {options.google_concurrency} Google calls at once"
    )
    print(
        f"  queries {len(captured.captured_queries)} in all, per batch: first {per_batch[0]}, "
        f"then at most {max(per_batch[1:] or [0])} (this thread's connection); Google: "
        f"{watches} watch + {stops} stop; active channels afterwards {active}"
    )
    print(
        f"  plus {metric_updates} updates of the convoke_google_calls counter, one per Google "
        f"call, made by the adapter from the threads that call Google"
    )

    def command(*args: str) -> tuple[float, float, int, str]:
        """Run the command in a process of its own; (seconds, its peak RSS in MiB, exit
        status, its summary line). The peak is the process's own ``VmHWM``, read as it exits
        (``ru_maxrss`` of a child would include the image it was forked from)."""
        output = stack.scratch / "renew-command.log"
        wrapper = (
            "import atexit, runpy, sys\n"
            "def peak():\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith('VmHWM:'):\n"
            "            print('peak-kib', line.split()[1], file=sys.stderr)\n"
            "atexit.register(peak)\n"
            "sys.argv = ['manage.py', *sys.argv[1:]]\n"
            "runpy.run_path('manage.py', run_name='__main__')\n"
        )
        started = time.perf_counter()
        with output.open("w") as handle:
            result = subprocess.run(
                [sys.executable, "-c", wrapper, "renew_google_channels", *args],
                cwd=PROJECT_DIR,
                env=stack.environment,
                stdout=handle,
                stderr=subprocess.STDOUT,
                timeout=options.max_seconds * 4,
                check=False,
            )
        elapsed = time.perf_counter() - started
        lines = output.read_text().splitlines()
        summary_line = next((line for line in lines if line.startswith("Summary")), "")
        peak_kib = next((int(line.split()[1]) for line in lines if line.startswith("peak-kib")), 0)
        return elapsed, peak_kib / 1024, result.returncode, summary_line

    _idle_seconds, idle_peak, _, _ = command("--within", "0.001")
    run_seconds, run_peak, status, line = command(
        "--within", "192", "--batch-size", str(options.batch_size)
    )
    print(
        f"  manage.py renew_google_channels renewing every channel again, in a process of its "
        f"own: {run_seconds:.1f} s, peak RSS {run_peak:.0f} MiB (the same command with nothing "
        f"to renew: {idle_peak:.0f} MiB), exit status {status}: {line}"
    )


def machine() -> str:
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{os.cpu_count()} CPU(s) ({platform.machine()}), {memory} RAM, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}, "
        f"load average {load:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notifications", type=int, default=5000)
    parser.add_argument("--channels", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--web-workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--burst-size", type=int, default=50)
    parser.add_argument("--renew-channels", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--google-concurrency", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=300.0, help="time bound per part")
    parser.add_argument("--parts", default="webhook,coalescing,renewal")
    options = parser.parse_args()
    options.notifications = max(1, min(options.notifications, 100_000))
    options.renew_channels = max(1, min(options.renew_channels, 50_000))
    options.burst_size = max(1, min(options.burst_size, 1000))
    parts = set(options.parts.split(","))

    scratch = Path(tempfile.mkdtemp(prefix="convoke-bench-push-"))
    fake = FakeGoogleCalendar()
    fake.start()
    environment = environment_for(scratch, fake)
    os.environ.update(environment)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    stack = Stack(environment=environment, scratch=scratch)
    print(f"machine: {machine()}")
    print(
        f"convoke: database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
        f"broker {settings.CELERY_BROKER_URL.split(':', 1)[0]}, fake Google in this process"
    )
    setup = owner_setup(fake)
    try:
        if "webhook" in parts:
            bench_webhook(setup, stack, options)
        if "coalescing" in parts:
            bench_coalescing(setup, stack, options)
        if "renewal" in parts:
            bench_renewal(setup, stack, options)
    finally:
        stack.stop()
        fake.stop()
    print(f"scratch folder (logs, database): {scratch}")


if __name__ == "__main__":
    main()
