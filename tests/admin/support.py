"""Rows for the console tests: messages, deliveries, channels and sync states, made directly
(the flows that create them for real are tested in their own apps)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django.utils import timezone

from calendars.models import Calendar
from gcal_push.models import ChannelState, GoogleCalendarChannel, GoogleCalendarSyncState
from invitations.models import Delivery, DeliveryKind, DeliveryStatus, DeliveryTransport
from invitations.services import message_id_new
from scheduling.models import SchedulingMessage
from tests.scheduling.itip import ATTENDEE, ORGANIZER, itip_body

_counter = itertools.count(1)


def message_create(
    *,
    uid: str | None = None,
    method: str = "REQUEST",
    sender: str = ORGANIZER,
    recipient: str = ATTENDEE,
    body: bytes | None = None,
    **fields: Any,
) -> SchedulingMessage:
    """A received message with its delivery (pending, nothing enqueued)."""
    n = next(_counter)
    uid = uid or f"event-{n}@dav.example.org"
    if body is None:
        body = itip_body(
            uid=uid, method=method, organizer=sender, attendees=((recipient, "NEEDS-ACTION"),)
        )
    delivery = Delivery.objects.create(
        kind=DeliveryKind.ITIP,
        method=method,
        body=body,
        uid=uid,
        sender=sender,
        recipient=recipient,
        transport=DeliveryTransport.SMTP,
        message_id_header=message_id_new(),
    )
    return SchedulingMessage.objects.create(
        delivery=delivery,
        body_sha256="0" * 64,
        method=method,
        sender=sender,
        recipient=recipient,
        uid=uid,
        dedupe_key=f"{n:064d}",
        **fields,
    )


def delivery_create(
    *,
    message: SchedulingMessage | None = None,
    status: str = DeliveryStatus.PENDING,
    transport: str = DeliveryTransport.SMTP,
    **fields: Any,
) -> Delivery:
    """The delivery of ``message`` (a new one by default), in the state asked for."""
    message = message or message_create()
    Delivery.objects.filter(pk=message.delivery_id).update(
        status=status, transport=transport, **fields
    )
    return Delivery.objects.get(pk=message.delivery_id)


def channel_create(
    *, calendar: Calendar, expires_in: dt.timedelta | None, state: str = ChannelState.ACTIVE
) -> GoogleCalendarChannel:
    return GoogleCalendarChannel.objects.create(
        calendar=calendar,
        resource_id=f"resource-{next(_counter)}",
        state=state,
        expiration=timezone.now() + expires_in if expires_in is not None else None,
    )


def sync_state_create(*, calendar: Calendar, **fields: Any) -> GoogleCalendarSyncState:
    return GoogleCalendarSyncState.objects.create(calendar=calendar, **fields)
