"""Hostile bodies at the callback (issue 11, findings 1 to 5): an answer at once, never a 5xx.

Every body of the hostile corpus (``tests/hostile``) and every generated 1 MiB shape is posted
as the CalDAV server posts it. What the budgets refuse is a 400 naming the limit; what is
accepted is delivered, not retried for a day. The wall-clock bound here is generous (the
suite shares two cores): it proves the answer is bounded, the figures are in bench/.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from invitations.models import Delivery, DeliveryStatus
from scheduling.models import SchedulingMessage
from tests.hostile import EXPECTED, generated_bodies, hostile_files
from tests.scheduling.itip import itip_body, post_callback

pytestmark = pytest.mark.django_db

ANSWER_BOUND_SECONDS = 5.0
HOSTILE = hostile_files()
GENERATED = generated_bodies()


def _timed_post(client: Client, body: bytes, capture: Any) -> tuple[Any, float, list[Any]]:
    with capture() as callbacks:
        started = time.monotonic()
        response = post_callback(client, body)
        elapsed = time.monotonic() - started
    return response, elapsed, callbacks


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.name)
def test_hostile_body_gets_its_answer_at_once_when_posted(
    client: Client, path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    expected = EXPECTED[path.name]

    response, elapsed, callbacks = _timed_post(
        client, path.read_bytes(), django_capture_on_commit_callbacks
    )

    text = response.content.decode("utf-8")
    assert elapsed < ANSWER_BOUND_SECONDS
    assert response.status_code == expected.status, text
    if expected.status == 400:
        assert f"(limit: {expected.limit})" in text
        assert SchedulingMessage.objects.count() == 0
        return
    for callback in callbacks:  # the worker's part, eagerly: delivered, not retried
        callback()
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.SENT, delivery.last_error


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_largest_body_of_each_costly_shape_is_answered_at_once_when_posted(
    client: Client, name: str, django_capture_on_commit_callbacks: Any
) -> None:
    response, elapsed, _ = _timed_post(client, GENERATED[name], django_capture_on_commit_callbacks)

    assert elapsed < ANSWER_BOUND_SECONDS
    assert response.status_code in (202, 400), response.content[:300]


def test_budget_refusal_names_the_limit_and_logs_no_tzid_when_tzid_is_too_long(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    tzid = "Europe/" + "x" * 300
    body = itip_body(extra=[f"EXDATE;TZID={tzid}:20261215T140000"])

    with caplog.at_level(logging.DEBUG):
        response = post_callback(client, body)

    assert response.status_code == 400
    assert "(limit: TZID length)" in response.content.decode()
    assert "xxxxxxxxxx" not in response.content.decode()
    assert "xxxxxxxxxx" not in caplog.text


def test_callback_answers_202_when_a_custom_zone_rule_starts_in_1601(client: Client) -> None:
    # Outlook and Exchange start every rule of their VTIMEZONEs in 1601: not an event date.
    body = itip_body(
        extra=[
            "EXDATE;TZID=Customized Time Zone:20261222T140000",
        ]
    ).replace(
        b"BEGIN:VEVENT",
        b"BEGIN:VTIMEZONE\r\nTZID:Customized Time Zone\r\nBEGIN:STANDARD\r\n"
        b"DTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
        b"RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\n"
        b"DTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
        b"RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
        b"BEGIN:VEVENT",
    )

    assert post_callback(client, body).status_code == 202


@pytest.mark.parametrize(
    ("line", "limit"),
    [
        ("DTSTART;TZID=Europe/Paris:18991231T100000", "year range"),
        ("RECURRENCE-ID;TZID=Europe/Paris:22010101T100000", "year range"),
        ("RDATE:00010101T000000Z", "year range"),
        ("EXDATE;VALUE=DATE:99991231", "year range"),
        ("RRULE:FREQ=DAILY;UNTIL=25000101T000000Z", "year range"),
        ("DURATION:P36500D", "year range"),
    ],
)
def test_callback_answers_400_naming_the_year_range_when_an_event_date_is_absurd(
    client: Client, line: str, limit: str
) -> None:
    body = itip_body(extra=[line])
    if line.startswith(("DTSTART", "DURATION")):
        body = body.replace(b"DTSTART;TZID=Europe/Paris:20261215T140000\r\n", b"").replace(
            b"DTEND;TZID=Europe/Paris:20261215T150000\r\n",
            b"DTSTART;TZID=Europe/Paris:21990101T100000\r\n" if line.startswith("DUR") else b"",
        )

    response = post_callback(client, body)

    assert response.status_code == 400
    assert f"(limit: {limit})" in response.content.decode()
