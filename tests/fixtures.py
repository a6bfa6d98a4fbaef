"""The fixtures every test folder uses, in one place (registered in tests/conftest.py).

- ``commit``: run what the code schedules after its commit (enqueues of sends, publishes,
  syncs) when the block ends; the test's own transaction never commits.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest

Commit = Callable[[], AbstractContextManager[Any]]


@pytest.fixture
def commit(django_capture_on_commit_callbacks: Any) -> Commit:
    """``with commit(): ...`` runs the on-commit callbacks of the block when it ends (and
    those they register in turn)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)
