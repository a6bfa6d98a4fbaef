"""Read-only pages look read-only: no Save or Delete where nothing can be changed by hand,
no booking transition written by hand, no "View site" link into a 404."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.contrib import admin
from django.db.models import Model
from django.test import Client
from django.urls import reverse

from calendars.models import BookingStatus, BookingTransition, TransitionSource
from invitations.models import InboundReply
from tests.admin.support import channel_create, delivery_create, sync_state_create
from tests.factories import BookingFactory, GoogleAccountFactory, GoogleCalendarFactory

pytestmark = pytest.mark.django_db

# Records only services write: their pages show, they never edit or delete.
READ_ONLY_MODELS = {
    "calendars.bookingtransition",
    "calendars.googleaccount",
    "scheduling.schedulingmessage",
    "invitations.delivery",
    "invitations.inboundreply",
    "gcal_push.googlecalendarchannel",
    "gcal_push.googlecalendarsyncstate",
}
BUTTONS = re.compile(rb'name="(_save|_continue|_addanother)"')
FORM_FIELDS = re.compile(rb'<(?:input|select|textarea)[^>]*name="([^"]+)"')
NOT_FIELDS = {b"csrfmiddlewaretoken", b"_save", b"_continue", b"_addanother", b"_popup"}


def _one_of_each() -> None:
    booking = BookingFactory()
    BookingTransition.objects.create(
        booking=booking,
        from_status=BookingStatus.REQUESTED,
        to_status=BookingStatus.BOOKED,
        source=TransitionSource.ADMIN,
    )
    calendar = GoogleCalendarFactory(google_account=GoogleAccountFactory())
    channel_create(calendar=calendar, expires_in=None)
    sync_state_create(calendar=calendar)
    delivery_create()
    body = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    InboundReply.objects.create(
        body=body,
        body_sha256=hashlib.sha256(body).hexdigest(),
        attendee="guest@example.net",
        organizer="alice@example.org",
        uid="event@example.org",
    )


def _label(model: type[Model]) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


def test_pages_without_an_editable_field_offer_no_save_and_no_delete(
    operator_client: Client,
) -> None:
    _one_of_each()
    read_only_seen = set()
    for model in admin.site._registry:
        instance = model._default_manager.first()
        if instance is None:
            continue
        url = reverse(
            f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[instance.pk]
        )
        response = operator_client.get(url)
        assert response.status_code == 200, url
        page = response.content
        editable = set(FORM_FIELDS.findall(page)) - NOT_FIELDS
        editable = {name for name in editable if not name.startswith(b"_selected")}
        if editable:
            assert _label(model) not in READ_ONLY_MODELS, (url, editable)
            continue
        read_only_seen.add(_label(model))
        assert not BUTTONS.search(page), f"{url} offers Save on a read-only page"
        assert b'class="deletelink"' not in page, f"{url} offers Delete on a read-only page"
    assert read_only_seen >= READ_ONLY_MODELS


def test_booking_transitions_are_not_written_by_hand(operator_client: Client) -> None:
    assert operator_client.get(reverse("admin:calendars_bookingtransition_add")).status_code == 403
    changelist = operator_client.get(reverse("admin:calendars_bookingtransition_changelist"))
    assert reverse("admin:calendars_bookingtransition_add").encode() not in changelist.content
    booking = BookingFactory()
    transition = BookingTransition.objects.create(
        booking=booking,
        from_status=BookingStatus.REQUESTED,
        to_status=BookingStatus.BOOKED,
        source=TransitionSource.ADMIN,
    )
    change = reverse("admin:calendars_bookingtransition_change", args=[transition.pk])
    operator_client.post(change, {"to_status": BookingStatus.CANCELLED, "_save": "Save"})
    transition.refresh_from_db()
    assert transition.to_status == BookingStatus.BOOKED
    delete = reverse("admin:calendars_bookingtransition_delete", args=[transition.pk])
    assert operator_client.get(delete).status_code == 403


def test_console_has_no_view_site_link_into_a_404(operator_client: Client) -> None:
    page = operator_client.get(reverse("admin:index")).content.decode()
    for href in re.findall(r'<a href="([^"]+)">View site</a>', page):
        assert operator_client.get(href).status_code == 200, href
