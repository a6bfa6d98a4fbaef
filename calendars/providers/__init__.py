"""Adapters for the calendar servers Convoke writes to: Google Calendar and CalDAV.

One module per outside system (docs/style.md rule 5): :mod:`calendars.providers.google` and
:mod:`calendars.providers.caldav`. Each owns authentication, timeouts and retries, returns
dataclasses and raises the exceptions below (or subclasses), chained with ``from`` to the
library's own error. Callers branch on these classes, never on a library's exception.
"""

from __future__ import annotations


class ProviderError(Exception):
    """A calendar provider refused or failed a request."""

    reason: str = "provider_error"

    def __init__(self, message: str = "", *, reason: str | None = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.__class__.__name__)
        if reason is not None:
            self.reason = reason


class TransientProviderError(ProviderError):
    """Worth trying again later: rate limits, server errors, timeouts, refused connections."""

    reason = "unavailable"
    # A hint for the caller's backoff, when the provider asked for a longer pause.
    retry_after_seconds: float | None = None


class ProviderNotConfigured(ProviderError):
    """The settings needed to reach this provider are missing."""

    reason = "not_configured"
