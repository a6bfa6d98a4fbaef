"""The scheduling messages console: masked list, readable escaped body, link to deliveries."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from invitations.models import DeliveryStatus
from tests.admin.support import delivery_create, message_create
from tests.scheduling.itip import itip_body

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:scheduling_schedulingmessage_changelist"


def test_list_masks_addresses_and_shows_delivery_state_when_rendered(
    operator_client: Client,
) -> None:
    message = message_create(
        sender="alice.organizer@example.org", recipient="bob.guest@example.net"
    )
    delivery_create(message=message, status=DeliveryStatus.DEAD)

    text = operator_client.get(reverse(CHANGELIST)).content.decode()

    assert "a***@example.org" in text and "b***@example.net" in text
    assert "alice.organizer@example.org" not in text
    assert "bob.guest@example.net" not in text
    assert '<span class="cv-badge cv-bad" title="Dead">Dead</span>' in text
    assert f"/delivery/{message.delivery_id}/change/" in text


def test_search_finds_a_message_by_its_full_address_when_typed(operator_client: Client) -> None:
    wanted = message_create(recipient="carol@example.net")
    other = message_create(recipient="dave@example.net")

    text = operator_client.get(reverse(CHANGELIST), {"q": "carol@example.net"}).content.decode()

    assert f"/schedulingmessage/{wanted.pk}/change/" in text
    assert f"/schedulingmessage/{other.pk}/change/" not in text


def test_list_filters_by_delivery_status_when_asked(operator_client: Client) -> None:
    dead = delivery_create(status=DeliveryStatus.DEAD)
    sent = delivery_create(status=DeliveryStatus.SENT)

    text = operator_client.get(
        reverse(CHANGELIST), {"delivery__status__exact": "dead"}
    ).content.decode()

    assert f"/schedulingmessage/{dead.scheduling_message.pk}/change/" in text
    assert f"/schedulingmessage/{sent.scheduling_message.pk}/change/" not in text


def test_delivery_link_leads_to_that_messages_delivery_when_followed(
    operator_client: Client,
) -> None:
    mine = delivery_create()
    other = delivery_create()

    page = operator_client.get(
        reverse("admin:scheduling_schedulingmessage_change", args=[mine.scheduling_message.pk])
    )

    assert page.status_code == 200
    text = page.content.decode()
    assert f"/delivery/{mine.pk}/change/" in text
    assert f"/delivery/{other.pk}/change/" not in text


def test_body_is_shown_folded_and_escaped_when_it_holds_markup(operator_client: Client) -> None:
    summary = "<script>alert('x')</script> " + "long summary words " * 8
    body = itip_body(uid="hostile@dav.example.org", summary=summary)
    message = message_create(uid="hostile@dav.example.org", body=body)

    response = operator_client.get(
        reverse("admin:scheduling_schedulingmessage_change", args=[message.pk])
    )

    text = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    # The SUMMARY is longer than 75 octets: its continuation lines are kept and marked.
    assert text.count('<span class="cv-cont"> ') >= 1
    assert '<span class="cv-line">BEGIN:VCALENDAR</span>' in text
    # The full addresses are on the message's own page.
    assert "alice@example.org" in text and "bob@example.net" in text


def test_body_is_cut_with_a_note_when_it_is_very_large(operator_client: Client) -> None:
    extra = [f"X-FILLER-{n}:{'x' * 60}" for n in range(5000)]
    body = itip_body(uid="huge@dav.example.org", extra=extra)
    assert len(body) > 256 * 1024
    message = message_create(uid="huge@dav.example.org", body=body)

    text = operator_client.get(
        reverse("admin:scheduling_schedulingmessage_change", args=[message.pk])
    ).content.decode()

    assert f"(first 256 KiB of {len(body)} bytes)" in text
    assert "END:VCALENDAR" not in text


def test_body_with_invalid_utf8_is_shown_with_replacements_when_opened(
    operator_client: Client,
) -> None:
    body = itip_body(uid="bytes@dav.example.org").replace(b"Project", b"Proj\xff\xfe")
    message = message_create(uid="bytes@dav.example.org", body=body)

    response = operator_client.get(
        reverse("admin:scheduling_schedulingmessage_change", args=[message.pk])
    )

    assert response.status_code == 200
    assert "Proj\ufffd\ufffd" in response.content.decode()
