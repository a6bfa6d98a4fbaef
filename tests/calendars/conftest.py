"""Fixtures of the calendars tests (the shared ones are in tests/fixtures.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clear_throttle_cache() -> Iterator[None]:
    cache.clear()
    yield
    cache.clear()
