"""The callback's store on PostgreSQL keeps its one statement prepared, per connection."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from invitations.models import Delivery
from scheduling.models import SchedulingMessage
from tests.scheduling.itip import itip_body, post_callback

pytestmark = [pytest.mark.postgres_only, pytest.mark.django_db(transaction=True)]


def _prepared_stores() -> list[tuple[str, int]]:
    """The store statements prepared on the default connection, and how often each ran."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, generic_plans + custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE %s",
            ["WITH new_delivery AS%"],
        )
        return [(statement, int(runs)) for statement, runs in cursor.fetchall()]


def _post(client: Client, index: int) -> None:
    response = post_callback(client, itip_body(uid=f"event-{index}@dav.example.org"))
    assert response.status_code == 202


def test_callbacks_on_one_connection_run_one_prepared_statement(client: Client) -> None:
    for index in range(3):
        _post(client, index)

    prepared = _prepared_stores()
    assert len(prepared) == 1
    assert prepared[0][1] == 3
    assert SchedulingMessage.objects.count() == Delivery.objects.count() == 3


def test_the_prepared_store_is_still_one_statement_and_no_commit_of_its_own(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Query logging and execute wrappers see the prepared statement like any other.
    monkeypatch.setattr("scheduling.services.deliveries_nudge_on_commit", lambda: None)
    _post(client, 0)

    with CaptureQueriesContext(connections["default"]) as captured:
        _post(client, 1)

    assert [q["sql"].split()[0] for q in captured.captured_queries] == ["WITH"]


def test_a_store_after_the_server_ended_the_connection_prepares_again(client: Client) -> None:
    _post(client, 0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (old_pid,) = cursor.fetchone()
    with connections.create_connection("default").cursor() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [old_pid])

    _post(client, 1)

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != old_pid
    assert [runs for _, runs in _prepared_stores()] == [1]
    assert SchedulingMessage.objects.count() == Delivery.objects.count() == 2


def test_nothing_is_prepared_when_prepared_statements_are_off(
    client: Client, settings: Any
) -> None:
    # A deployment behind a pooler that cannot keep prepared statements.
    settings.DATABASE_PREPARED_STATEMENTS = False

    for index in range(2):
        _post(client, index)

    assert _prepared_stores() == []
    assert SchedulingMessage.objects.count() == 2
