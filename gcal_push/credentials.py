"""The one way to a Calendar API client for an account, and the write-back of its tokens.

google-auth refreshes an expired access token on the credentials object only; the adapter
hands it to ``on_refresh`` and never writes to the database. :func:`google_client` gives
clients whose refreshed tokens :func:`google_credentials_store` writes back (encrypted), so
that the next task does not refresh again. It is also the core's ``google_client`` hook
(:mod:`calendars.hooks`), which the bookings use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from django.utils import timezone
from google.oauth2.credentials import Credentials

from calendars.models import GoogleAccount
from calendars.providers import google

logger = logging.getLogger(__name__)


def google_client(account: GoogleAccount) -> google.GoogleCalendarClient:
    """A Calendar API client with ``account``'s stored credentials; a token google-auth
    refreshes is written back by :func:`google_credentials_store`. Build one per task.

    Raises :class:`~calendars.providers.google.AuthRevoked` for an account without a grant.
    """
    raw: Any = account.credentials  # an EncryptedJSONField holds the decrypted JSON
    stored: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {}
    if account.revoked or (not stored.get("refresh_token") and not stored.get("token")):
        raise google.AuthRevoked("the Google account is disconnected")
    scopes = tuple(stored.get("scopes") or ())
    account_id = account.pk

    def store(refreshed: Credentials) -> None:
        google_credentials_store(account_id=account_id, credentials=refreshed, scopes=scopes)

    return google.GoogleCalendarClient(
        credentials=google.credentials_from_document(stored), on_refresh=store
    )


def google_credentials_store(
    *, account_id: int, credentials: Credentials, scopes: Iterable[str]
) -> bool:
    """Write a refreshed token back (encrypted), unless the account was revoked meanwhile:
    without it every worker would refresh on every call. Returns whether it was stored."""
    document: Any = google.credentials_document(
        token=credentials.token,
        refresh_token=credentials.refresh_token,
        expiry=credentials.expiry,
        scopes=tuple(scopes),
    )
    updated = GoogleAccount.objects.filter(pk=account_id, revoked=False).update(
        credentials=document, updated_at=timezone.now()
    )
    logger.info("google token refreshed account=%s stored=%s", account_id, bool(updated))
    return bool(updated)
