"""Google's error responses as our own exceptions (contract table "Errors").

Every call of the adapter raises one of these, chained to the library's error; callers
branch on the type, never on status codes or messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.auth import exceptions as google_auth_exceptions
from googleapiclient.errors import HttpError

from calendars.providers import ProviderError, TransientProviderError
from calendars.providers.google.types import RATE_LIMIT_REASONS

# --- Exceptions -------------------------------------------------------------------------------


class GoogleError(ProviderError):
    """Google refused a request. ``status`` is the HTTP status, ``reason`` Google's reason."""

    reason = "google_error"

    def __init__(self, message: str = "", *, status: int | None = None, reason: str | None = None):
        super().__init__(message, reason=reason)
        self.status = status


class BadRequest(GoogleError):
    """400 for a reason that no other class covers (invalid value, missing field...)."""

    reason = "badRequest"


class Forbidden(GoogleError):
    """403 that is not a rate limit (no access to the calendar, ...)."""

    reason = "forbidden"


class NotFound(GoogleError):
    """404: the event, calendar or channel does not exist (or is not shared with the account)."""

    reason = "notFound"


class Gone(GoogleError):
    """410 ``deleted``: the event was deleted already."""

    reason = "deleted"


class Duplicate(GoogleError):
    """409 ``duplicate``: an event with this id exists (or existed) in the calendar."""

    reason = "duplicate"


class PreconditionFailed(GoogleError):
    """412 ``conditionNotMet``: the event changed since the etag sent in ``If-Match``."""

    reason = "conditionNotMet"


class SyncTokenInvalid(GoogleError):
    """410 ``fullSyncRequired``: the sync token is dead; do a full sync and reconcile."""

    reason = "fullSyncRequired"


class PushNotSupported(GoogleError):
    """400 ``pushNotSupportedForRequestedResource``: this calendar cannot be watched."""

    reason = "pushNotSupportedForRequestedResource"


class ChannelIdNotUnique(GoogleError):
    """400 ``channelIdNotUnique``: a channel with this id was created before."""

    reason = "channelIdNotUnique"


class AuthRevoked(GoogleError):
    """The grant is revoked or expired (``invalid_grant``): the account must reconnect."""

    reason = "invalid_grant"


class AuthFailed(GoogleError):
    """401 even after a refresh, or credentials missing: the request could not be authorised."""

    reason = "authError"


class RateLimited(GoogleError, TransientProviderError):
    """429, a rate-limit 403 that outlasted our retries, or ``quotaExceeded``."""

    reason = "rateLimitExceeded"


class Unavailable(GoogleError, TransientProviderError):
    """5xx after our retries, a timeout, or no connection. The request may have been applied."""

    reason = "backendError"


class OAuthError(GoogleError):
    """The token endpoint refused an authorization code (bad, reused, wrong verifier...)."""

    reason = "oauth_error"


def _error_reasons(exc: HttpError) -> list[str]:
    details = exc.error_details if isinstance(exc.error_details, list) else []
    return [str(d.get("reason", "")) for d in details if isinstance(d, Mapping)]


def classify(exc: HttpError) -> GoogleError:
    """Our exception for a Google error response (contract table "Errors")."""
    status = int(exc.status_code)
    reasons = _error_reasons(exc)
    reason = reasons[0] if reasons else ""
    message = f"Google answered {status} {reason or exc.reason}".strip()
    kwargs: dict[str, Any] = {"status": status}
    if status == 429 or (status == 403 and RATE_LIMIT_REASONS.intersection(reasons)):
        return RateLimited(message, reason=reason or "rateLimitExceeded", **kwargs)
    if status == 403 and "quotaExceeded" in reasons:
        error = RateLimited(message, reason="quotaExceeded", **kwargs)
        error.retry_after_seconds = 15 * 60.0
        return error
    if status >= 500:
        return Unavailable(message, reason=reason or "backendError", **kwargs)
    if status == 401:
        return AuthFailed(message, **kwargs)
    if status == 403:
        return Forbidden(message, reason=reason or "forbidden", **kwargs)
    if status == 404:
        return NotFound(message, **kwargs)
    if status == 409:
        return Duplicate(message, **kwargs)
    if status == 410:
        if "fullSyncRequired" in reasons:
            return SyncTokenInvalid(message, **kwargs)
        return Gone(message, **kwargs)
    if status == 412:
        return PreconditionFailed(message, **kwargs)
    if status == 400 and "pushNotSupportedForRequestedResource" in reasons:
        return PushNotSupported(message, **kwargs)
    if status == 400 and "channelIdNotUnique" in reasons:
        return ChannelIdNotUnique(message, **kwargs)
    return BadRequest(message, reason=reason or "badRequest", **kwargs)


def is_retryable(error: GoogleError) -> bool:
    return isinstance(error, Unavailable) or (
        isinstance(error, RateLimited) and error.reason != "quotaExceeded"
    )


def refresh_error(exc: google_auth_exceptions.RefreshError) -> GoogleError:
    data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], Mapping) else {}
    error = str(data.get("error", "")) if data else ""
    if error == "invalid_grant" or (
        not data and "invalid_grant" in str(exc.args[0] if exc.args else "")
    ):
        return AuthRevoked("Google refused the refresh token (invalid_grant)")
    if getattr(exc, "retryable", False):
        return Unavailable("Google's token endpoint failed", reason="tokenEndpointError")
    return AuthFailed(f"Google refused to refresh the token ({error or 'unknown error'})")
