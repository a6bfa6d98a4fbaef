"""One retry policy for every kind of work that is tried again (docs/style.md rule 8).

A :class:`RetryPolicy` is exponential backoff with jitter and a cap, and a budget of
attempts. Each kind of work has its policy, built from the settings at call time by
:func:`retry_policy` (so an operator's environment, and a test's settings, apply at once):

- ``delivery`` (the outbox sweep): ``DELIVERY_RETRY_BASE_SECONDS``,
  ``DELIVERY_RETRY_MAX_SECONDS``, ``DELIVERY_RETRY_JITTER``, ``DELIVERY_MAX_ATTEMPTS``;
- ``booking_publish`` (the booking publish task): ``BOOKING_PUBLISH_BACKOFF_SECONDS``,
  ``BOOKING_PUBLISH_MAX_RETRIES``;
- ``google_api`` (in-place retries inside the Google adapter): ``GOOGLE_API_BACKOFF_SECONDS``,
  ``GOOGLE_API_MAX_RETRIES``;
- ``google_task`` (Google sync and channel tasks) and ``inbound_reply`` (mail clients' own
  answers): fixed values.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from django.conf import settings

PolicyName = Literal["delivery", "booking_publish", "google_api", "google_task", "inbound_reply"]


@dataclass(frozen=True)
class RetryPolicy:
    """Wait ``min(base * 2**(n - 1), cap)`` seconds after the n-th failure, spread by
    ``+/- jitter`` (a fraction) so that work that failed together does not come back
    together; give up after ``max_attempts`` attempts."""

    base_seconds: float
    max_seconds: float
    jitter: float
    max_attempts: int

    def delay(self, *, failures: int, hint: float | None = None) -> float:
        """Seconds to wait after ``failures`` failed attempts (1 or more). ``hint`` is a
        delay the other side asked for (``Retry-After``), honoured up to the cap."""
        delay = min(self.max_seconds, self.base_seconds * 2 ** max(failures - 1, 0))
        if self.jitter:
            delay *= 1 + random.uniform(-self.jitter, self.jitter)
        if hint:
            delay = max(delay, min(hint, self.max_seconds))
        return max(delay, 0.0)

    def exhausted(self, *, attempts: int) -> bool:
        """Whether ``attempts`` attempts used up the budget."""
        return attempts >= self.max_attempts


def retry_policy(name: PolicyName) -> RetryPolicy:
    """The policy ``name`` with the current settings (see the module docstring)."""
    if name == "delivery":
        return RetryPolicy(
            base_seconds=settings.DELIVERY_RETRY_BASE_SECONDS,
            max_seconds=settings.DELIVERY_RETRY_MAX_SECONDS,
            jitter=settings.DELIVERY_RETRY_JITTER,
            max_attempts=settings.DELIVERY_MAX_ATTEMPTS,
        )
    if name == "booking_publish":
        # Attempts = the first run plus BOOKING_PUBLISH_MAX_RETRIES retries.
        return RetryPolicy(
            base_seconds=settings.BOOKING_PUBLISH_BACKOFF_SECONDS,
            max_seconds=3600.0,
            jitter=0.25,
            max_attempts=settings.BOOKING_PUBLISH_MAX_RETRIES + 1,
        )
    if name == "google_api":
        # In-place retries of 429, rate-limit 403 and 5xx inside one adapter call.
        return RetryPolicy(
            base_seconds=settings.GOOGLE_API_BACKOFF_SECONDS,
            max_seconds=32.0,
            jitter=0.25,
            max_attempts=settings.GOOGLE_API_MAX_RETRIES + 1,
        )
    if name == "google_task":
        return RetryPolicy(base_seconds=30.0, max_seconds=1800.0, jitter=0.25, max_attempts=7)
    if name == "inbound_reply":
        # A CalDAV outage is retried for about a day, then the reply is marked failed.
        return RetryPolicy(base_seconds=60.0, max_seconds=3600.0, jitter=0.2, max_attempts=13)
    raise ValueError(f"unknown retry policy {name!r}")
