"""Fixtures of the calendars tests: the fake Google server, Radicale, connected accounts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from django.core.cache import cache

from calendars.models import Calendar, GoogleAccount, Provider, User
from calendars.providers import google as google_provider
from tests.factories import GoogleAccountFactory, ScheduleFactory, UserFactory
from tests.fakes import radicale as radicale_fakes
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.radicale import RadicaleServer
from tests.log_scan import SENSITIVE_VALUES

radicale_server = radicale_fakes.radicale_server  # the session fixture, shared with this folder


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


@pytest.fixture(autouse=True)
def _clear_throttle_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()


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
