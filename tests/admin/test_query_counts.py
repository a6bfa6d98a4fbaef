"""Every console list costs the same number of queries for 200 rows as for 20 (no N+1).

Each list is opened with ``?all=`` so that all 200 rows render on one page; the count is
measured for 20 rows, then 180 more are added and it must not move, and it must stay under
a fixed bound.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from calendars.metrics import recent_count_add
from calendars.models import BookingStatus, BookingTransition, PublishState
from gcal_push.models import GoogleCalendarSyncState
from invitations.models import DeliveryStatus
from scheduling.models import REFUSALS_RECENT
from tests.admin.support import channel_create, delivery_create
from tests.factories import (
    BookingFactory,
    CalendarFactory,
    GoogleCalendarFactory,
    ScheduleFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ROWS = 200
# Session, user, the list's count(s), the rows, the date hierarchy, filters' choices.
MAX_QUERIES = 12
STATUSES = list(BookingStatus)
DELIVERY_STATUSES = list(DeliveryStatus)


def _bookings(n: int) -> None:
    calendar = CalendarFactory()
    google = GoogleCalendarFactory()
    for index in range(n):
        booking = BookingFactory(
            calendar=google if index % 2 else calendar,
            status=STATUSES[index % len(STATUSES)],
            publish_state=PublishState.FAILED if index % 3 == 0 else PublishState.PUBLISHED,
            start=timezone.now() + dt.timedelta(hours=index),
        )
        BookingTransition.objects.create(
            booking=booking, from_status="", to_status=booking.status, source="api"
        )


def _messages(n: int) -> None:
    for index in range(n):
        delivery_create(status=DELIVERY_STATUSES[index % len(DELIVERY_STATUSES)])


def _calendars(n: int) -> None:
    owner = UserFactory()
    for index in range(n):
        calendar = GoogleCalendarFactory(owner=owner)
        if index % 2:
            GoogleCalendarSyncState.objects.create(
                calendar=calendar, last_failure_at=timezone.now(), last_error="backendError"
            )


def _accounts(n: int) -> None:
    for _ in range(n):
        GoogleCalendarFactory()


def _refusals(n: int) -> None:
    for _ in range(n):
        recent_count_add(REFUSALS_RECENT, "unauthorized")


def _transitions(n: int) -> None:
    calendar = CalendarFactory()
    first = timezone.now() + dt.timedelta(days=1)
    for index in range(n):
        start = first + dt.timedelta(hours=index)
        BookingTransition.objects.create(
            booking=BookingFactory(
                calendar=calendar, start=start, end=start + dt.timedelta(minutes=30)
            ),
            from_status="",
            to_status="requested",
            source="api",
        )


def _channels(n: int) -> None:
    for index in range(n):
        calendar = GoogleCalendarFactory()
        channel_create(calendar=calendar, expires_in=dt.timedelta(hours=index - 10))
        GoogleCalendarSyncState.objects.create(calendar=calendar)


def _schedules(n: int) -> None:
    for _ in range(n):
        ScheduleFactory()


def _users(n: int) -> None:
    for _ in range(n):
        UserFactory()


CASES: list[tuple[str, Callable[[int], None]]] = [
    ("admin:calendars_schedule_changelist", _schedules),
    ("admin:calendars_user_changelist", _users),
    ("admin:calendars_booking_changelist", _bookings),
    ("admin:scheduling_schedulingmessage_changelist", _messages),
    ("admin:invitations_delivery_changelist", _messages),
    ("admin:calendars_calendar_changelist", _calendars),
    ("admin:calendars_googleaccount_changelist", _accounts),
    ("admin:calendars_bookingtransition_changelist", _transitions),
    ("admin:gcal_push_googlecalendarchannel_changelist", _channels),
    ("admin:gcal_push_googlecalendarsyncstate_changelist", _channels),
]


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, {"all": ""})
    assert response.status_code == 200, url
    return len(captured)


@pytest.mark.parametrize(("name", "make"), CASES, ids=[name.split(":")[1] for name, _ in CASES])
def test_list_query_count_stays_flat_when_it_shows_200_rows(
    operator_client: Client,
    django_assert_max_num_queries: Any,
    name: str,
    make: Callable[[int], None],
) -> None:
    url = reverse(name)
    make(20)
    small = _queries(operator_client, url)
    make(ROWS - 20)
    with django_assert_max_num_queries(MAX_QUERIES):
        response = operator_client.get(url, {"all": ""})
    assert response.status_code == 200
    large = _queries(operator_client, url)
    print(f"{name}: {small} queries for 20 rows, {large} for {ROWS}")
    assert large == small, f"{name}: {small} queries for 20 rows, {large} for {ROWS}"
    assert response.context["cl"].result_count >= ROWS


def test_index_query_count_stays_flat_when_every_table_grows(
    operator_client: Client, django_assert_max_num_queries: Any
) -> None:
    _messages(20)
    _refusals(20)
    small = _queries(operator_client, reverse("admin:index"))
    _messages(ROWS)
    _refusals(ROWS)
    _channels(50)
    with django_assert_max_num_queries(MAX_QUERIES):
        operator_client.get(reverse("admin:index"))
    large = _queries(operator_client, reverse("admin:index"))
    print(f"admin:index: {small} queries with 20 rows per table, {large} with {ROWS}")
    assert large == small
