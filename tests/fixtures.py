"""The fixtures and helpers every test folder shares, in one place (a pytest plugin registered
in tests/conftest.py): commits, the fake Google servers and connected accounts, Radicale,
and the broker queue and worker helpers.

- ``commit``: run what the code schedules after its commit (enqueues of sends, publishes,
  syncs) when the block ends; the test's own transaction never commits.
- ``quick_retries``: the outbox's retries due at once.
- ``google_fake`` / ``google_setup`` / ``google_schedule``: the fake Calendar API with one
  connected subscriber; ``google`` / :func:`owner_create` / :func:`watched_create`: the fake
  with push notifications and watched calendars.
- ``radicale``: Django pointed at the session's Radicale server.
- ``radicale_accounts``: a session Radicale to which tests add users;
  ``sabre``: La Suite's CalDAV server as the contract describes it (tests/fakes/sabre.py), in
  front of it, with Django pointed at it (API key, homes found through the principal).
- ``task_queue`` / :func:`worker_running` / :func:`settle`: tasks through the real broker to
  a queue of the test's own, drained in the test thread or by a real worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from celery.signals import task_postrun, task_prerun
from django.utils import timezone
from kombu import Queue
from kombu.exceptions import ChannelError

from calendars.celery import app
from calendars.models import Calendar, GoogleAccount, Provider, Schedule, User
from calendars.providers import google as google_provider
from gcal_push.models import ChannelState, GoogleCalendarChannel, GoogleCalendarSyncState
from tests.factories import GoogleAccountFactory, ScheduleFactory, UserFactory
from tests.fakes import radicale as radicale_fakes
from tests.fakes.celery_worker import tasks_routed_to, worker_thread
from tests.fakes.google_calendar import FakeChannel, FakeGoogleCalendar
from tests.fakes.google_push import GooglePushEmitter
from tests.fakes.radicale import RadicaleAccounts, RadicaleServer
from tests.fakes.sabre import SabreLike, sabre_running
from tests.log_scan import SENSITIVE_VALUES
from tests.settings import TEST_INBOUND_API_KEY

radicale_server = radicale_fakes.radicale_server  # the session fixtures
radicale_accounts = radicale_fakes.radicale_accounts

Commit = Callable[[], AbstractContextManager[Any]]


@pytest.fixture
def commit(django_capture_on_commit_callbacks: Any) -> Commit:
    """``with commit(): ...`` runs the on-commit callbacks of the block when it ends (and
    those they register in turn)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def quick_retries(settings: Any) -> None:
    """Outbox retries due at once (a zero backoff base, no jitter): each sweep is one more
    attempt."""
    settings.DELIVERY_RETRY_BASE_SECONDS = 0
    settings.DELIVERY_RETRY_JITTER = 0


# --- The fake Calendar API and a connected subscriber ----------------------------------------


@pytest.fixture(scope="session")
def google_server() -> Iterator[FakeGoogleCalendar]:
    fake = FakeGoogleCalendar()
    fake.start()
    SENSITIVE_VALUES.add(fake.client_secret)
    yield fake
    fake.stop()


@pytest.fixture
def google_fake(google_server: FakeGoogleCalendar, settings) -> Iterator[FakeGoogleCalendar]:  # type: ignore[no-untyped-def]
    """The fake, emptied, with Django pointed at it and fast retries."""
    google_server.reset()
    for name, value in google_server.django_settings().items():
        setattr(settings, name, value)
    settings.GOOGLE_API_BACKOFF_SECONDS = 0.001
    settings.GOOGLE_API_TIMEOUT_SECONDS = 5.0
    settings.BOOKING_PUBLISH_BACKOFF_SECONDS = 0.0
    yield google_server
    google_server.reset()


@dataclasses.dataclass
class GoogleSetup:
    """A subscriber with a connected Google account and calendar, known to the fake."""

    user: User
    account: GoogleAccount
    calendar: Calendar
    subject: str
    email: str
    refresh_token: str
    access_token: str


def google_setup_create(
    fake: FakeGoogleCalendar, *, n: int = 1, calendar_id: str | None = None
) -> GoogleSetup:
    subject = f"10987654321{n:04d}"
    email = f"owner{n}@example.org"
    calendar_id = calendar_id or f"bookings{n}@group.calendar.google.com"
    fake.account_add(subject=subject, email=email, calendars=(calendar_id,))
    access, refresh = fake.tokens_issue(subject=subject, scopes=google_provider.SCOPES)
    SENSITIVE_VALUES.update({access, refresh})
    user = UserFactory(email=email, full_name=f"Owner {n}", language="en", time_zone="Europe/Paris")
    account = GoogleAccountFactory(
        owner=user,
        subject=subject,
        credentials=google_provider.credentials_document(
            token=access, refresh_token=refresh, expiry=None, scopes=google_provider.SCOPES
        ),
        scopes=list(google_provider.SCOPES),
    )
    calendar = Calendar.objects.create(
        owner=user,
        provider=Provider.GOOGLE,
        remote_id=calendar_id,
        display_name="Bookings",
        google_account=account,
    )
    return GoogleSetup(
        user=user,
        account=account,
        calendar=calendar,
        subject=subject,
        email=email,
        refresh_token=refresh,
        access_token=access,
    )


@pytest.fixture
def google_setup(google_fake: FakeGoogleCalendar, db: None) -> GoogleSetup:
    return google_setup_create(google_fake)


@pytest.fixture
def google_schedule(google_setup: GoogleSetup):  # type: ignore[no-untyped-def]
    return ScheduleFactory(
        owner=google_setup.user, calendar=google_setup.calendar, slug="google-meet", slot_minutes=30
    )


@pytest.fixture
def radicale(radicale_server: RadicaleServer, settings) -> RadicaleServer:  # type: ignore[no-untyped-def]
    """Django pointed at the session's Radicale with HTTP Basic credentials."""
    settings.CALDAV_URL = radicale_server.url
    settings.CALDAV_USERNAME = radicale_server.username
    settings.CALDAV_PASSWORD = radicale_server.password
    settings.CALDAV_OUTBOUND_API_KEY = ""
    settings.CALDAV_TIMEOUT_SECONDS = 10.0
    settings.BOOKING_PUBLISH_BACKOFF_SECONDS = 0.0
    return radicale_server


@pytest.fixture
def sabre(radicale_accounts: RadicaleAccounts, settings: Any) -> Iterator[SabreLike]:
    """The sabre-like CalDAV server, with Convoke's adapter pointed at it as at La Suite's
    (API key plus ``X-Forwarded-User``; calendar homes found through the principal)."""
    with sabre_running(radicale_accounts, callback_key=TEST_INBOUND_API_KEY) as server:
        settings.CALDAV_URL = server.url
        settings.CALDAV_OUTBOUND_API_KEY = server.api_key
        settings.CALDAV_USERNAME = ""
        settings.CALDAV_PASSWORD = ""
        settings.CALDAV_CALENDAR_HOME_TEMPLATE = ""
        settings.CALDAV_TIMEOUT_SECONDS = 5.0
        yield server


# --- Broker queues, workers, and the fake with push notifications ---------------------------


class TaskQueue:
    """A broker queue that receives the tasks instead of running them eagerly."""

    def __init__(self, name: str) -> None:
        self.name = name

    def size(self) -> int:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            Queue(self.name, channel=channel).declare()
            try:
                return int(channel.queue_declare(queue=self.name, passive=True).message_count)
            except ChannelError:  # Redis keeps no empty queue: none declared means none queued
                return 0

    def purge(self) -> int:
        with app.connection_for_write() as connection:
            return int(Queue(self.name, channel=connection.default_channel).purge() or 0)

    def drain(self, emitter: GooglePushEmitter | None = None, *, max_tasks: int = 500) -> list[str]:
        """Run the queued tasks in this thread, one at a time, until none is left; between
        two tasks, deliver the notifications ``emitter`` holds (they may queue more tasks).
        Returns the names of the tasks run. Deterministic, on any database: the tasks went
        through the real broker, and only this thread touches the database."""
        ran: list[str] = []
        with app.connection_for_write() as connection:
            queue = connection.SimpleQueue(self.name)
            try:
                while len(ran) < max_tasks:
                    if emitter is not None and emitter.held:
                        emitter.flush()
                    try:
                        message = queue.get(block=False)
                    except queue.Empty:
                        if emitter is not None and emitter.held:
                            continue
                        return ran
                    name = message.headers["task"]
                    args, kwargs, _embed = message.decode()
                    message.ack()
                    app.tasks[name].apply(args=args, kwargs=kwargs, task_id=message.headers["id"])
                    ran.append(name)
            finally:
                queue.close()
        raise AssertionError(f"more than {max_tasks} tasks: a loop?")


@pytest.fixture
def task_queue() -> Iterator[TaskQueue]:
    """Acknowledge now, work later: every task goes through the broker to a queue of this
    test's own (so that no other test's worker takes it), and nothing runs it unless the test
    starts a worker on it (:func:`worker_running`)."""
    queue = TaskQueue(f"convoke-test-{uuid.uuid4().hex[:12]}")
    try:
        with tasks_routed_to(queue.name):
            yield queue
    finally:
        queue.purge()


# --- The fake Google server and watched calendars ---------------------------------------------

WEBHOOK_URL = "https://convoke.test/webhooks/google-calendar/"


@pytest.fixture(scope="session")
def push_google_server() -> Iterator[PushFakeGoogleCalendar]:
    fake = PushFakeGoogleCalendar()
    fake.start()
    SENSITIVE_VALUES.add(fake.client_secret)
    yield fake
    fake.stop()


@pytest.fixture
def google(
    push_google_server: PushFakeGoogleCalendar, settings: Any
) -> Iterator[PushFakeGoogleCalendar]:
    """The fake Google server, emptied, with Django pointed at it and fast adapter retries."""
    push_google_server.reset()
    for name, value in push_google_server.django_settings().items():
        setattr(settings, name, value)
    settings.GOOGLE_WEBHOOK_URL = WEBHOOK_URL
    settings.GOOGLE_API_BACKOFF_SECONDS = 0.001
    settings.GOOGLE_API_TIMEOUT_SECONDS = 5.0
    settings.BOOKING_PUBLISH_BACKOFF_SECONDS = 0.0
    settings.GOOGLE_INVITE_ENABLED = True
    settings.GOOGLE_SYNC_DEBOUNCE_SECONDS = 0.0
    yield push_google_server
    push_google_server.reset()


@dataclasses.dataclass
class Owner:
    """A subscriber with a Google account known to the fake."""

    user: User
    account: GoogleAccount
    subject: str
    email: str


@dataclasses.dataclass
class Watched:
    """One of the owner's Google calendars, used by an active schedule."""

    owner: Owner
    calendar: Calendar
    schedule: Schedule

    @property
    def remote_id(self) -> str:
        return self.calendar.remote_id


def owner_create(fake: FakeGoogleCalendar, *, n: int = 1) -> Owner:
    subject = f"20987654321{n:04d}"
    email = f"owner{n}@example.org"
    fake.account_add(subject=subject, email=email)
    access, refresh = fake.tokens_issue(subject=subject, scopes=google_provider.SCOPES)
    SENSITIVE_VALUES.update({access, refresh})
    user = UserFactory(email=email, full_name=f"Owner {n}")
    account = GoogleAccountFactory(
        owner=user,
        subject=subject,
        credentials=google_provider.credentials_document(
            token=access, refresh_token=refresh, expiry=None, scopes=google_provider.SCOPES
        ),
        scopes=list(google_provider.SCOPES),
    )
    return Owner(user=user, account=account, subject=subject, email=email)


def watched_create(
    fake: FakeGoogleCalendar, owner: Owner, *, count: int = 1, push_supported: bool = True
) -> list[Watched]:
    """``count`` calendars of ``owner``, at the fake and in the database, each the calendar of
    an active schedule (bulk-created: thousands take a second)."""
    start = Calendar.objects.filter(owner=owner.user).count()
    remote_ids = [
        f"cal{start + i:05d}.{owner.subject}@group.calendar.google.com" for i in range(count)
    ]
    for remote_id in remote_ids:
        fake.calendar_add(
            calendar_id=remote_id, subject=owner.subject, push_supported=push_supported
        )
    calendars = Calendar.objects.bulk_create(
        [
            Calendar(
                owner=owner.user,
                provider=Provider.GOOGLE,
                remote_id=remote_id,
                display_name=f"Bookings {start + i}",
                google_account=owner.account,
            )
            for i, remote_id in enumerate(remote_ids)
        ]
    )
    schedules = Schedule.objects.bulk_create(
        [
            Schedule(
                owner=owner.user,
                calendar=calendar,
                slug=f"s-{owner.subject}-{calendar.pk}",
                title="Meet me",
                slot_minutes=30,
            )
            for calendar in calendars
        ]
    )
    return [
        Watched(owner=owner, calendar=c, schedule=s)
        for c, s in zip(calendars, schedules, strict=True)
    ]


def channels_seed(
    fake: FakeGoogleCalendar, watched: list[Watched], *, expires_in: dt.timedelta
) -> list[GoogleCalendarChannel]:
    """An active channel for each calendar, in the database and live at the fake, as if
    created by an earlier run (thousands in a second, without a watch call each)."""
    now = timezone.now()
    channels = GoogleCalendarChannel.objects.bulk_create(
        [
            GoogleCalendarChannel(
                calendar=w.calendar,
                resource_id=f"seeded-resource-{w.calendar.pk}",
                expiration=now + expires_in,
                state=ChannelState.ACTIVE,
            )
            for w in watched
        ]
    )
    GoogleCalendarSyncState.objects.bulk_create(
        [GoogleCalendarSyncState(calendar=w.calendar) for w in watched], ignore_conflicts=True
    )
    for w, channel in zip(watched, channels, strict=True):
        SENSITIVE_VALUES.add(channel.token)
        fake.channels[channel.channel_id] = FakeChannel(
            id=channel.channel_id,
            resource_id=channel.resource_id,
            resource_uri=f"{fake.api_endpoint}calendars/{w.remote_id}/events?alt=json",
            calendar_id=w.remote_id,
            address=WEBHOOK_URL,
            token=channel.token,
            expiration_ms=int((now + expires_in).timestamp() * 1000),
            subject=w.owner.subject,
            created_at=now,
        )
    return channels


class PushFakeGoogleCalendar(FakeGoogleCalendar):
    """The fake Google server with one more fault: while ``drop_next_pages`` is set, every
    request for a follow-up page of ``events.list`` gets its connection closed without an
    answer, as when a worker or the network dies between two pages."""

    def __init__(self) -> None:
        self.drop_next_pages = False
        super().__init__()

    def reset(self) -> None:
        super().reset()
        self.drop_next_pages = False

    def handle(self, handler: Any) -> None:
        if (
            self.drop_next_pages
            and handler.command == "GET"
            and "/events?" in handler.path
            and "pageToken=" in handler.path
        ):
            length = int(handler.headers.get("Content-Length") or 0)
            handler.rfile.read(length)
            handler.close_connection = True
            return
        super().handle(handler)


class WorkerWatch:
    """Counts the tasks a worker runs, through Celery's task signals (no database access, so
    the test thread never competes with the worker for SQLite's locks)."""

    def __init__(self) -> None:
        self.started = 0
        self.finished = 0
        self._lock = threading.Lock()

    def _prerun(self, **kwargs: Any) -> None:
        with self._lock:
            self.started += 1

    def _postrun(self, **kwargs: Any) -> None:
        with self._lock:
            self.finished += 1

    def __enter__(self) -> WorkerWatch:
        task_prerun.connect(self._prerun, weak=False)
        task_postrun.connect(self._postrun, weak=False)
        return self

    def __exit__(self, *exc: object) -> None:
        task_prerun.disconnect(self._prerun)
        task_postrun.disconnect(self._postrun)


@contextlib.contextmanager
def worker_running(queue: TaskQueue) -> Iterator[WorkerWatch]:
    """A real Celery worker (a thread of this process) consuming ``queue``."""
    with WorkerWatch() as watch, worker_thread(queue.name):
        yield watch


def settle(
    fake: FakeGoogleCalendar, watch: WorkerWatch, queue: TaskQueue, *, timeout: float = 30.0
) -> None:
    """Wait until the worker has nothing left: no task running, none queued, the fake idle
    for a moment. Reads no database."""
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    seen: tuple[int, int] = (-1, -1)
    while time.monotonic() < deadline:
        idle = watch.started == watch.finished and queue.size() == 0
        now_seen = (len(fake.requests), watch.finished)
        if not idle or now_seen != seen:
            quiet_since = None
            seen = now_seen
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 0.5:
            return
        time.sleep(0.05)
    raise AssertionError("the worker did not settle in time")
