"""Reads on the shared schema for the bookings API and pages (docs/style.md rule 2).

Every function that serves a subscriber takes the user and returns only that user's rows:
another subscriber's booking is simply not found (the API answers 404, not 403).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet

from calendars.models import (
    Booking,
    BookingTransition,
    Calendar,
    GoogleAccount,
    Schedule,
    User,
)


@dataclass(frozen=True)
class BookingFilters:
    statuses: tuple[str, ...] = ()
    publish_states: tuple[str, ...] = ()
    schedule_slug: str | None = None
    calendar_id: int | None = None
    start_after: dt.datetime | None = None
    start_before: dt.datetime | None = None


def booking_list(*, user: User, filters: BookingFilters | None = None) -> QuerySet[Booking]:
    """The user's bookings (as organizer), soonest first, filtered."""
    filters = filters or BookingFilters()
    bookings = Booking.objects.filter(organizer=user).select_related("calendar", "schedule")
    if filters.statuses:
        bookings = bookings.filter(status__in=filters.statuses)
    if filters.publish_states:
        bookings = bookings.filter(publish_state__in=filters.publish_states)
    if filters.schedule_slug:
        bookings = bookings.filter(schedule__slug=filters.schedule_slug)
    if filters.calendar_id is not None:
        bookings = bookings.filter(calendar_id=filters.calendar_id)
    if filters.start_after is not None:
        bookings = bookings.filter(start__gte=filters.start_after)
    if filters.start_before is not None:
        bookings = bookings.filter(start__lt=filters.start_before)
    return bookings.order_by("start", "pk")


def booking_get(*, user: User, booking_id: int) -> Booking:
    """One of the user's bookings with its transitions. Raises ``Booking.DoesNotExist``."""
    return (
        Booking.objects.select_related("calendar", "schedule")
        .prefetch_related(
            Prefetch("transitions", queryset=BookingTransition.objects.order_by("at", "pk"))
        )
        .get(organizer=user, pk=booking_id)
    )


def booking_for_decision(*, booking_id: int, ical_uid: str) -> Booking:
    """The booking a decision link names. Raises ``Booking.DoesNotExist``."""
    return Booking.objects.select_related("organizer", "schedule").get(
        pk=booking_id, ical_uid=ical_uid
    )


def calendar_list(*, user: User) -> QuerySet[Calendar]:
    return Calendar.objects.filter(owner=user).order_by("provider", "display_name", "pk")


def schedule_list(*, user: User) -> QuerySet[Schedule]:
    return Schedule.objects.filter(owner=user).select_related("calendar").order_by("slug")


def schedule_get(*, user: User, slug: str) -> Schedule:
    return Schedule.objects.select_related("calendar").get(owner=user, slug=slug)


def schedule_public_get(*, slug: str) -> Schedule:
    """An active schedule by slug, for the public booking endpoint."""
    return Schedule.objects.only("pk", "slug", "active").get(slug=slug, active=True)


def google_account_list(*, user: User) -> QuerySet[GoogleAccount]:
    return GoogleAccount.objects.filter(owner=user).order_by("pk")


def google_account_get(*, user: User, account_id: int) -> GoogleAccount:
    return GoogleAccount.objects.get(owner=user, pk=account_id)
