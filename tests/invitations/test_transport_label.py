"""A delivery is labelled by the route it takes: files, SMTP or Brevo (never "smtp" for an
email written to a file), in the outbox, the console and the metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families
from pytest_django import Settings as SettingsWrapper

from invitations.models import Delivery, DeliveryStatus
from tests.scheduling.itip import itip_body, post_callback

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("route", ["file", "smtp", "brevo"])
def test_callback_delivery_is_labelled_with_the_configured_mail_route(
    client: Client, settings: SettingsWrapper, route: str
) -> None:
    settings.MAIL_ROUTE = route
    assert post_callback(client, itip_body()).status_code == 202
    assert Delivery.objects.get().transport == route


def _sent_by_transport(client: Client) -> dict[str, float]:
    text = client.get("/metrics").content.decode()
    return {
        sample.labels["transport"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "convoke_deliveries_total" and sample.labels["outcome"] == "sent"
    }


def test_email_written_to_a_file_is_sent_and_counted_as_file(
    client: Client,
    settings: SettingsWrapper,
    tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
    admin_client: Client,
) -> None:
    settings.MAIL_ROUTE = "file"
    settings.MAILERS = {
        "default": {
            "BACKEND": "calendars.mail_files.EmailBackend",
            "OPTIONS": {"file_path": str(tmp_path)},
        }
    }
    before = _sent_by_transport(client).get("file", 0)
    with django_capture_on_commit_callbacks(execute=True):
        assert post_callback(client, itip_body()).status_code == 202
    delivery = Delivery.objects.get()
    assert (delivery.transport, delivery.status) == ("file", DeliveryStatus.SENT)
    assert len(list(tmp_path.glob("*.eml"))) == 1
    assert _sent_by_transport(client).get("file", 0) == before + 1
    page = admin_client.get(reverse("admin:invitations_delivery_change", args=[delivery.pk]))
    assert b"Files (embedded default)" in page.content
