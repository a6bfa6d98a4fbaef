"""factory_boy factories for watch channels and sync states."""

from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from gcal_push.models import ChannelState, GoogleCalendarChannel, GoogleCalendarSyncState
from tests.factories import GoogleCalendarFactory


class GoogleCalendarSyncStateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GoogleCalendarSyncState

    calendar = factory.SubFactory(GoogleCalendarFactory)


class GoogleCalendarChannelFactory(factory.django.DjangoModelFactory):
    """An active channel; its calendar's sync state row is created with it."""

    class Meta:
        model = GoogleCalendarChannel
        skip_postgeneration_save = True

    calendar = factory.SubFactory(GoogleCalendarFactory)
    resource_id = factory.Sequence(lambda n: f"resource-{n:06d}")
    state = ChannelState.ACTIVE
    expiration = factory.LazyFunction(lambda: timezone.now() + dt.timedelta(days=6))

    @factory.post_generation
    def sync_state(
        obj: GoogleCalendarChannel, create: bool, extracted: object, **kwargs: object
    ) -> None:
        if create:
            GoogleCalendarSyncState.objects.get_or_create(calendar=obj.calendar)
