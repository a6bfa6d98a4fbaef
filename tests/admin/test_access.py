"""Only staff reach the console; staff without permissions see nothing and change nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from calendars.models import Booking, BookingStatus, BookingTransition
from invitations.models import DeliveryStatus
from tests.admin.support import delivery_create, message_create
from tests.factories import BookingFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "admin:calendars_booking_changelist",
    "admin:calendars_calendar_changelist",
    "admin:calendars_googleaccount_changelist",
    "admin:scheduling_schedulingmessage_changelist",
    "admin:invitations_delivery_changelist",
    "admin:gcal_push_googlecalendarchannel_changelist",
    "admin:gcal_push_googlecalendarsyncstate_changelist",
]


def _object_urls() -> list[str]:
    booking = BookingFactory()
    delivery = delivery_create()
    return [
        reverse("admin:index"),
        *(reverse(name) for name in CHANGELISTS),
        reverse("admin:calendars_booking_change", args=[booking.pk]),
        reverse("admin:scheduling_schedulingmessage_change", args=[delivery.scheduling_message.pk]),
        reverse("admin:invitations_delivery_change", args=[delivery.pk]),
        reverse("admin:invitations_delivery_preview", args=[delivery.pk]),
    ]


def test_every_console_page_redirects_to_login_when_anonymous(client: Client) -> None:
    for url in _object_urls():
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


def test_every_console_page_is_refused_when_the_user_is_not_staff(client: Client) -> None:
    client.force_login(UserFactory(is_staff=False, is_superuser=False))
    for url in _object_urls():
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


def test_object_pages_are_forbidden_when_staff_lacks_permissions(client: Client) -> None:
    client.force_login(UserFactory(is_staff=True))
    for url in _object_urls()[1:]:
        assert client.get(url).status_code == 403, url


def test_index_hides_the_panel_when_staff_lacks_permissions(client: Client) -> None:
    delivery_create(status=DeliveryStatus.DEAD)
    client.force_login(UserFactory(is_staff=True))
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    assert "What needs attention" not in response.content.decode()


def test_booking_action_changes_nothing_when_the_user_is_not_staff(client: Client) -> None:
    booking = BookingFactory(status=BookingStatus.REQUESTED)
    client.force_login(UserFactory(is_staff=False))
    response = client.post(
        reverse("admin:calendars_booking_changelist"),
        {"action": "confirm", "_selected_action": [booking.pk]},
    )
    assert response.status_code == 302
    assert Booking.objects.get(pk=booking.pk).status == BookingStatus.REQUESTED
    assert not BookingTransition.objects.filter(booking=booking).exists()


def test_booking_action_is_unavailable_when_staff_may_only_view(client: Client) -> None:
    booking = BookingFactory(status=BookingStatus.REQUESTED)
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_booking"))
    client.force_login(viewer)
    page = client.get(reverse("admin:calendars_booking_changelist"))
    assert page.status_code == 200
    assert 'value="confirm"' not in page.content.decode()
    response = client.post(
        reverse("admin:calendars_booking_changelist"),
        {"action": "confirm", "_selected_action": [booking.pk]},
    )
    assert response.status_code in (200, 302)
    assert Booking.objects.get(pk=booking.pk).status == BookingStatus.REQUESTED
    assert not BookingTransition.objects.filter(booking=booking).exists()


def test_delivery_actions_change_nothing_when_staff_may_only_view(client: Client) -> None:
    delivery = delivery_create(status=DeliveryStatus.FAILED)
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_delivery"))
    client.force_login(viewer)
    for action in ("retry_now", "mark_dead"):
        client.post(
            reverse("admin:invitations_delivery_changelist"),
            {"action": action, "_selected_action": [delivery.pk]},
        )
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    # Viewing is allowed, and so is the preview (it sends nothing).
    preview = client.get(reverse("admin:invitations_delivery_preview", args=[delivery.pk]))
    assert preview.status_code == 200


def test_message_pages_refuse_to_change_anything_when_posted(
    operator_client: Client,
) -> None:
    message = message_create()
    url = reverse("admin:scheduling_schedulingmessage_change", args=[message.pk])
    response = operator_client.post(url, {"method": "CANCEL", "uid": "other"})
    assert response.status_code == 403
    message.refresh_from_db()
    assert (message.method, message.uid) != ("CANCEL", "other")
