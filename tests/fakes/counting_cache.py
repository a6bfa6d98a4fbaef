"""A cache shared by processes (files), which counts the calls made to it: the tests of the
delivery nudge count how often a commit asks the shared cache (Redis in production)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.cache.backends.filebased import FileBasedCache

CALLS: Counter[str] = Counter()


class CountingFileCache(FileBasedCache):
    """Django's file cache; each ``add`` and ``delete`` is counted in :data:`CALLS`."""

    def add(self, key: Any, value: Any, timeout: Any = None, version: Any = None) -> bool:
        CALLS["add"] += 1
        return super().add(key, value, timeout, version)

    def delete(self, key: Any, version: Any = None) -> bool:
        CALLS["delete"] += 1
        return super().delete(key, version)
