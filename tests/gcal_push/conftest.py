"""Fixtures of the Google push tests: task queues on the real broker, the fake Google server,
watched calendars."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone
from kombu import Queue

from calendars.celery import app
from calendars.models import Calendar, GoogleAccount, Provider, Schedule, User
from calendars.providers import google as google_provider
from gcal_push.models import ChannelState, GoogleCalendarChannel, GoogleCalendarSyncState
from tests.factories import GoogleAccountFactory, UserFactory
from tests.fakes.google_calendar import FakeChannel, FakeGoogleCalendar
from tests.log_scan import SENSITIVE_VALUES


class TaskQueue:
    """A broker queue that receives the gcal_push tasks instead of running them eagerly."""

    def __init__(self, name: str) -> None:
        self.name = name

    def size(self) -> int:
        with app.connection_for_write() as connection:
            channel = connection.default_channel
            Queue(self.name, channel=channel).declare()
            return int(channel.queue_declare(queue=self.name, passive=True).message_count)

    def purge(self) -> int:
        with app.connection_for_write() as connection:
            return int(Queue(self.name, channel=connection.default_channel).purge() or 0)


@pytest.fixture
def task_queue() -> Iterator[TaskQueue]:
    """Acknowledge now, work later: tasks go through the broker to a queue of this test's own
    (so that no other test's worker takes them), and nothing runs them unless a test starts
    a worker on it."""
    queue = TaskQueue(f"convoke-test-gcal-{uuid.uuid4().hex[:12]}")
    previous_eager = app.conf.task_always_eager
    previous_routes = app.conf.task_routes
    app.conf.update(
        task_always_eager=False, task_routes={"gcal_push.tasks.*": {"queue": queue.name}}
    )
    try:
        yield queue
    finally:
        app.conf.update(task_always_eager=previous_eager, task_routes=previous_routes)
        queue.purge()


# --- The fake Google server and watched calendars ---------------------------------------------

WEBHOOK_URL = "https://convoke.test/webhooks/google-calendar/"


@pytest.fixture(scope="session")
def push_google_server() -> Iterator[FakeGoogleCalendar]:
    fake = FakeGoogleCalendar()
    fake.start()
    SENSITIVE_VALUES.add(fake.client_secret)
    yield fake
    fake.stop()


@pytest.fixture
def google(push_google_server: FakeGoogleCalendar, settings: Any) -> Iterator[FakeGoogleCalendar]:
    """The fake Google server, emptied, with Django pointed at it and fast adapter retries."""
    push_google_server.reset()
    for name, value in push_google_server.django_settings().items():
        setattr(settings, name, value)
    settings.GOOGLE_WEBHOOK_URL = WEBHOOK_URL
    settings.GOOGLE_API_BACKOFF_SECONDS = 0.001
    settings.GOOGLE_API_TIMEOUT_SECONDS = 5.0
    settings.BOOKING_SYNC_BACKOFF_SECONDS = 0.0
    settings.GOOGLE_INVITE_ENABLED = True
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
