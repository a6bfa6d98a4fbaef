"""Shared fixtures: database vendor markers, free ports, the shared corpus."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

pytest_plugins = [
    "tests.log_scan",
    "tests.fakes.smtp",
    "tests.fakes.messages_api",
    "tests.fakes.celery_worker",
    "tests.fixtures",
]

PROJECT_DIR = Path(__file__).resolve().parent.parent
CORPUS_DIR = PROJECT_DIR.parent / "shared" / "corpus"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    on_real_broker = settings.CELERY_BROKER_URL.startswith(("redis", "rediss", "amqp"))
    skip_pg = pytest.mark.skip(
        reason="needs PostgreSQL (set DATABASE_URL; runs in CI's second pass)"
    )
    skip_broker = pytest.mark.skip(
        reason="needs a broker server such as Redis (set CELERY_BROKER_URL; CI's second pass)"
    )
    for item in items:
        if "postgres_only" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)
        if "real_broker" in item.keywords and not on_real_broker:
            item.add_marker(skip_broker)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    if not (CORPUS_DIR / "ics").is_dir():
        pytest.skip(f"the shared corpus is absent (expected at {CORPUS_DIR}/ics)")
    return CORPUS_DIR


@pytest.fixture
def db_vendor(db: None) -> Iterator[str]:
    yield connection.vendor


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Each test starts with an empty cache (recent refusal counts, throttling, lookups), and
    no process memo of a delivery task known to be queued (invitations.services.nudge)."""
    from invitations.services import deliveries_nudge_clear

    cache.clear()
    deliveries_nudge_clear()
