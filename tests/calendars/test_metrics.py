"""``GET /metrics``: Prometheus text that parses, counters that move, access control."""

from __future__ import annotations

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from pytest_django import Settings as SettingsWrapper

from calendars.metrics import counter_increment

pytestmark = pytest.mark.django_db


def _samples(
    client: Client, **headers: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_counters_move_when_incremented(client: Client, settings: SettingsWrapper) -> None:
    settings.METRICS_TOKEN = ""
    key = ("convoke_callbacks_refused_total", (("reason", "bad_key"),))
    other = ("convoke_callbacks_refused_total", (("reason", "too_large"),))
    # Counters are totals kept across tests (per-process files): compare two readings.
    before = _samples(client)
    counter_increment("convoke_callbacks_refused", reason="bad_key")
    counter_increment("convoke_callbacks_refused", reason="bad_key")
    counter_increment("convoke_callbacks_refused", reason="too_large")
    samples = _samples(client)
    assert samples[key] == before.get(key, 0.0) + 2
    assert samples[other] == before.get(other, 0.0) + 1


def test_undeclared_counter_is_refused() -> None:
    with pytest.raises(KeyError):
        counter_increment("convoke_no_such_counter")


def test_label_values_cannot_forge_other_labels() -> None:
    with pytest.raises(ValueError, match="may not contain"):
        counter_increment("convoke_callbacks_refused", reason="x,method=REQUEST")


def test_metrics_answer_only_loopback_without_token(
    client: Client, settings: SettingsWrapper
) -> None:
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200


def test_metrics_require_the_bearer_token_when_set(
    client: Client, settings: SettingsWrapper
) -> None:
    settings.METRICS_TOKEN = "metrics-secret-token"
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-secret-tokeX")
    assert wrong.status_code == 401
    assert b"metrics-secret" not in wrong.content
    ok = client.get(
        "/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer metrics-secret-token"
    )
    assert ok.status_code == 200
