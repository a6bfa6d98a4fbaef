"""``GET /metrics`` while real callbacks arrive and their emails go out over real SMTP.

Callbacks are posted through Django's test client exactly as the CalDAV server posts them;
the deliveries they create are sent to the aiosmtpd sink (tasks run eagerly after commit).
The exposition must parse with the Prometheus client's own parser, and the counters must
move by exactly what happened.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from invitations.models import Delivery, DeliveryStatus
from tests.fakes.smtp import SmtpSink
from tests.scheduling.itip import ATTENDEE, ORGANIZER, itip_body, post_callback

pytestmark = pytest.mark.django_db

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(autouse=True)
def _loopback_metrics(settings: Any) -> None:
    settings.METRICS_TOKEN = ""


def _scrape(client: Client) -> tuple[Samples, dict[str, str]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    families = list(text_string_to_metric_families(response.content.decode("utf-8")))
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families
        for sample in family.samples
    }
    return samples, {family.name: family.type for family in families}


def _moved(before: Samples, after: Samples) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        key: value - before.get(key, 0.0)
        for key, value in after.items()
        if value != before.get(key, 0.0)
    }


def test_callback_counters_move_by_method_and_reason_when_callbacks_arrive(
    client: Client, django_capture_on_commit_callbacks: Any, smtp_sink: SmtpSink
) -> None:
    before, _ = _scrape(client)

    with django_capture_on_commit_callbacks(execute=True):
        assert post_callback(client, itip_body(uid="m1@dav.example.org")).status_code == 202
        # The same message again: accepted, but counted (and sent) once.
        assert post_callback(client, itip_body(uid="m1@dav.example.org")).status_code == 202
        reply = itip_body(
            method="REPLY", uid="m2@dav.example.org", attendees=((ATTENDEE, "ACCEPTED"),)
        )
        assert (
            post_callback(client, reply, method="REPLY", sender=ATTENDEE, recipient=ORGANIZER)
        ).status_code == 202
    assert (
        post_callback(client, itip_body(), key="wrong-key-000000000000000000000").status_code == 401
    )
    assert post_callback(client, itip_body(), content_type="text/plain").status_code == 415
    assert post_callback(client, b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n").status_code == 400
    assert client.get("/api/v1.0/caldav-scheduling-callback/").status_code == 405

    after, _ = _scrape(client)
    moved = _moved(before, after)
    callbacks = {key: n for key, n in moved.items() if key[0].startswith("convoke_callbacks")}
    assert callbacks == {
        ("convoke_callbacks_accepted_total", (("method", "REQUEST"),)): 1,
        ("convoke_callbacks_accepted_total", (("method", "REPLY"),)): 1,
        ("convoke_callbacks_refused_total", (("reason", "unauthorized"),)): 1,
        ("convoke_callbacks_refused_total", (("reason", "content_type"),)): 1,
        ("convoke_callbacks_refused_total", (("reason", "body"),)): 1,
        ("convoke_callbacks_refused_total", (("reason", "method_not_allowed"),)): 1,
    }
    assert moved[("convoke_deliveries_total", (("outcome", "sent"), ("transport", "smtp")))] == 2
    assert len(smtp_sink.messages) == 2


def test_delivery_outcomes_and_latency_histogram_follow_the_sends_when_smtp_fails_then_recovers(
    client: Client, django_capture_on_commit_callbacks: Any, smtp_sink: SmtpSink, settings: Any
) -> None:
    settings.DELIVERY_MAX_ATTEMPTS = 2
    before, _ = _scrape(client)
    smtp_sink.refuse_next(1, 451)  # the first send is deferred, then retried by the sweep
    with django_capture_on_commit_callbacks(execute=True):
        assert post_callback(client, itip_body(uid="late@dav.example.org")).status_code == 202
    deferred = Delivery.objects.get(uid="late@dav.example.org")
    assert deferred.status == DeliveryStatus.FAILED
    smtp_sink.refuse_next(2, 550)  # a permanent refusal kills the next one at once
    with django_capture_on_commit_callbacks(execute=True):
        assert post_callback(client, itip_body(uid="dead@dav.example.org")).status_code == 202
    assert Delivery.objects.get(uid="dead@dav.example.org").status == DeliveryStatus.DEAD
    smtp_sink.reset()
    from invitations.services import deliveries_sweep

    with django_capture_on_commit_callbacks(execute=True):
        deliveries_sweep(now=timezone.now() + dt.timedelta(hours=1))
    deferred.refresh_from_db()
    assert deferred.status == DeliveryStatus.SENT
    # Make its latency known: accepted 90 seconds before it was sent.
    Delivery.objects.filter(pk=deferred.pk).update(
        created_at=deferred.sent_at - dt.timedelta(seconds=90)  # type: ignore[operator]
    )

    after, types = _scrape(client)

    moved = _moved(before, after)
    deliveries = {key: n for key, n in moved.items() if key[0] == "convoke_deliveries_total"}
    assert deliveries == {
        ("convoke_deliveries_total", (("outcome", "retry"), ("transport", "smtp"))): 1,
        ("convoke_deliveries_total", (("outcome", "dead"), ("transport", "smtp"))): 1,
        ("convoke_deliveries_total", (("outcome", "sent"), ("transport", "smtp"))): 1,
    }
    assert types["convoke_delivery_latency_seconds"] == "histogram"
    smtp = (("transport", "smtp"),)
    assert after[("convoke_delivery_latency_seconds_count", smtp)] == 1
    assert after[("convoke_delivery_latency_seconds_sum", smtp)] == pytest.approx(90, abs=1)
    bucket = lambda le: after[("convoke_delivery_latency_seconds_bucket", (("le", le), *smtp))]  # noqa: E731
    assert (bucket("60.0"), bucket("300.0"), bucket("+Inf")) == (0, 1, 1)
    assert after[("convoke_deliveries_by_state", (("status", "dead"), *smtp))] == 1


def test_latency_histogram_is_empty_but_parses_when_nothing_was_sent(client: Client) -> None:
    samples, types = _scrape(client)
    assert types["convoke_delivery_latency_seconds"] == "histogram"
    assert not [key for key in samples if key[0].startswith("convoke_delivery_latency")]
