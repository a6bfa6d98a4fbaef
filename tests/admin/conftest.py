"""Fixtures of the operators' console tests: an operator, the fake Google server, commits."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.test import Client

from calendars.models import User
from tests.calendars.conftest import google_fake, google_schedule, google_server, google_setup
from tests.factories import UserFactory
from tests.gcal_push.conftest import google, push_google_server

__all__ = [
    "google",
    "google_fake",
    "google_schedule",
    "google_server",
    "google_setup",
    "push_google_server",
]

Commit = Callable[[], AbstractContextManager[Any]]
OPERATOR_ZONE = "America/New_York"


@pytest.fixture
def operator(db: None) -> User:
    """A superuser whose time zone is not the server's (UTC)."""
    return UserFactory(
        email="operator@example.org", is_staff=True, is_superuser=True, time_zone=OPERATOR_ZONE
    )


@pytest.fixture
def operator_client(client: Client, operator: User) -> Client:
    client.force_login(operator)
    return client


@pytest.fixture
def commit(django_capture_on_commit_callbacks: Any) -> Commit:
    """Run what the code schedules after commit (provider syncs, sends) when the block ends."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
