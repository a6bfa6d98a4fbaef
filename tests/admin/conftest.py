"""Fixtures of the operators' console tests: an operator (the shared ones, the fake Google
servers and commits among them, are in tests/fixtures.py)."""

from __future__ import annotations

import pytest
from django.test import Client

from calendars.models import User
from tests.factories import UserFactory

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
