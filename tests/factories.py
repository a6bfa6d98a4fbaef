"""factory_boy factories for the core models."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from calendars.models import (
    Booking,
    BookingStatus,
    Calendar,
    GoogleAccount,
    Provider,
    Schedule,
    User,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"subscriber{n}@example.org")
    full_name = factory.Sequence(lambda n: f"Subscriber {n}")
    language = "en"
    time_zone = "Europe/Paris"
    password = factory.django.Password("correct horse battery staple")


class GoogleAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GoogleAccount

    owner = factory.SubFactory(UserFactory)
    subject = factory.Sequence(lambda n: f"1000000000000{n}")
    credentials = factory.LazyFunction(
        lambda: {"token": "ya29.test-access", "refresh_token": "1//test-refresh", "expiry": None}
    )
    scopes = factory.LazyFunction(lambda: ["https://www.googleapis.com/auth/calendar.events"])


class CalendarFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Calendar

    owner = factory.SubFactory(UserFactory)
    provider = Provider.CALDAV
    display_name = factory.Sequence(lambda n: f"Calendar {n}")
    remote_id = factory.Sequence(lambda n: f"https://dav.example.org/calendars/u/cal{n}/")
    connected = True


class GoogleCalendarFactory(CalendarFactory):
    provider = Provider.GOOGLE
    remote_id = factory.Sequence(lambda n: f"calendar{n}@group.calendar.google.com")
    google_account = factory.SubFactory(
        GoogleAccountFactory, owner=factory.SelfAttribute("..owner")
    )


class ScheduleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Schedule

    owner = factory.SubFactory(UserFactory)
    calendar = factory.SubFactory(CalendarFactory, owner=factory.SelfAttribute("..owner"))
    slug = factory.Sequence(lambda n: f"meet-{n}")
    title = "Meet me"
    slot_minutes = 30


class BookingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Booking

    calendar = factory.SubFactory(CalendarFactory)
    organizer = factory.SelfAttribute("calendar.owner")
    attendee_name = "Bob Bookee"
    attendee_email = factory.Sequence(lambda n: f"bookee{n}@example.net")
    start = factory.LazyFunction(
        lambda: (timezone.now() + dt.timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    )
    end = factory.LazyAttribute(lambda o: o.start + dt.timedelta(minutes=30))
    time_zone = "Europe/Paris"
    title = "Intro call"
    status = BookingStatus.REQUESTED
