"""A subscriber's Google account: connecting it, using it, and losing it (the Google app).

One entry point each (docs/architecture.md, "the Google app"):

- connection: :func:`google_authorization_start` and :func:`google_authorization_complete`;
- a Calendar API client with the account's credentials, whose refreshed tokens are written
  back: :func:`gcal_push.credentials.google_client`;
- revocation, whoever meets ``invalid_grant`` first:
  :func:`gcal_push.revocation.google_account_revoked_record`;
- the subscriber disconnecting: :func:`google_account_disconnect`.

The authorization-code flow (RFC 6749 section 4.1) with PKCE (RFC 7636, S256) and a ``state``
kept in the subscriber's session, asking for offline access (a refresh token) and the scopes
of :data:`calendars.providers.google.SCOPES`:

1. :func:`google_authorization_start` stores state and code verifier in the session and
   returns the consent page's address (``GOOGLE_AUTH_URI``);
2. :func:`google_authorization_complete` checks the state (once, in constant time, within
   ten minutes), trades the code at ``GOOGLE_TOKEN_URI``, stores the credentials encrypted on
   a :class:`~calendars.models.GoogleAccount` and the calendar list as ``Calendar`` rows of
   provider ``google`` (:func:`google_calendars_refresh`).

Which calendars are watched is never decided here: after a change of calendars, their
channels are re-derived from :func:`gcal_push.selectors.calendars_to_watch` by a task
(:func:`gcal_push.services.calendars_watch_enqueue`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import MutableMapping
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from calendars.models import Calendar, GoogleAccount, Provider
from calendars.providers import google
from gcal_push.channels import channels_teardown
from gcal_push.credentials import google_client
from gcal_push.services import calendars_watch_enqueue

logger = logging.getLogger(__name__)

SESSION_KEY = "convoke.google_oauth"
STATE_MAX_AGE_SECONDS = 600
WRITABLE_ROLES = frozenset({"owner", "writer"})


class GoogleConnectError(Exception):
    """The connection cannot complete; ``reason`` is a stable code for the page to explain."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def redirect_uri() -> str:
    """The callback address registered with the OAuth client (from ``APP_URL``)."""
    return settings.APP_URL + reverse("google-callback")


def _code_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def google_authorization_start(*, session: MutableMapping[str, Any], user_id: int) -> str:
    """Remember a fresh state and PKCE verifier in the session; return the consent URL."""
    if not settings.GOOGLE_CLIENT_ID:
        raise GoogleConnectError("not_configured")
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters of the RFC 7636 alphabet
    session[SESSION_KEY] = {
        "state": state,
        "verifier": verifier,
        "user_id": user_id,
        "created": int(time.time()),
    }
    return google.authorization_url(
        redirect_uri=redirect_uri(), state=state, code_challenge=_code_challenge(verifier)
    )


def google_authorization_complete(
    *,
    session: MutableMapping[str, Any],
    user_id: int,
    state: str,
    code: str,
    error: str = "",
) -> GoogleAccount:
    """Finish the flow started in this session. Raises :class:`GoogleConnectError`.

    Reasons: ``no_flow`` (nothing started, or already used), ``expired``, ``state_mismatch``,
    ``denied`` (the user refused), ``bad_request``, ``exchange_failed``,
    ``google_unavailable``, ``scopes_missing``, ``no_refresh_token``, ``account_taken``.
    """
    pending = session.pop(SESSION_KEY, None)  # one use, whatever happens next
    if not isinstance(pending, dict) or pending.get("user_id") != user_id:
        raise GoogleConnectError("no_flow")
    if int(time.time()) - int(pending.get("created", 0)) > STATE_MAX_AGE_SECONDS:
        raise GoogleConnectError("expired")
    if not hmac.compare_digest(str(pending.get("state", "")), state or ""):
        raise GoogleConnectError("state_mismatch")
    if error:
        raise GoogleConnectError("denied")
    if not code or len(code) > 2048:
        raise GoogleConnectError("bad_request")
    try:
        grant = google.authorization_code_exchange(
            code=code, redirect_uri=redirect_uri(), code_verifier=str(pending["verifier"])
        )
    except google.Unavailable as exc:
        raise GoogleConnectError("google_unavailable") from exc
    except google.OAuthError as exc:
        logger.warning("google code exchange refused reason=%s", exc.reason)
        raise GoogleConnectError("exchange_failed") from exc
    if not google.REQUIRED_SCOPES.issubset(grant.scopes):
        google.token_revoke(token=grant.refresh_token or grant.access_token)
        raise GoogleConnectError("scopes_missing")
    account = google_account_connect(user_id=user_id, grant=grant)
    google_calendars_refresh(account_id=account.pk)
    return account


def google_account_connect(*, user_id: int, grant: google.TokenGrant) -> GoogleAccount:
    """Store (or renew) the account's encrypted credentials. Raises ``account_taken``."""
    with transaction.atomic():
        account = GoogleAccount.objects.select_for_update().filter(subject=grant.subject).first()
        if account is not None and account.owner_id != user_id:
            raise GoogleConnectError("account_taken")
        previous: Any = account.credentials if account is not None else None
        refresh_token = grant.refresh_token or (
            previous.get("refresh_token") if isinstance(previous, dict) else None
        )
        if not refresh_token:
            raise GoogleConnectError("no_refresh_token")
        credentials: Any = google.credentials_document(
            token=grant.access_token,
            refresh_token=refresh_token,
            expiry=grant.expiry,
            scopes=grant.scopes,
        )
        if account is None:
            account = GoogleAccount.objects.create(
                owner_id=user_id,
                subject=grant.subject,
                credentials=credentials,
                scopes=sorted(set(grant.scopes)),
            )
        else:
            account.credentials = credentials
            account.scopes = sorted(set(grant.scopes))
            account.revoked = False
            account.revoked_at = None
            account.save(
                update_fields=["credentials", "scopes", "revoked", "revoked_at", "updated_at"]
            )
    logger.info("google account connected account=%s user=%s", account.pk, user_id)
    return account


def google_calendars_refresh(*, account_id: int) -> list[Calendar]:
    """Store the account's writable calendars as ``Calendar`` rows (provider ``google``).

    Calendars Google no longer lists (or that became read-only) are marked disconnected. The
    watch channels of all of them are re-derived after the commit.
    """
    account = GoogleAccount.objects.select_related("owner").get(pk=account_id)
    entries = google_client(account).calendar_list()
    writable = {e.id: e for e in entries if e.access_role in WRITABLE_ROLES}
    with transaction.atomic():
        existing = {
            c.remote_id: c
            for c in Calendar.objects.select_for_update().filter(
                owner_id=account.owner_id, provider=Provider.GOOGLE
            )
        }
        kept: list[Calendar] = []
        for remote_id, entry in writable.items():
            calendar = existing.get(remote_id)
            if calendar is None:
                calendar = Calendar(
                    owner_id=account.owner_id, provider=Provider.GOOGLE, remote_id=remote_id
                )
            calendar.display_name = entry.summary[:255]
            calendar.google_account = account
            calendar.connected = True
            calendar.save()
            kept.append(calendar)
        gone = [
            c.pk
            for remote_id, c in existing.items()
            if remote_id not in writable and c.google_account_id == account.pk
        ]
        Calendar.objects.filter(pk__in=gone).update(connected=False, updated_at=timezone.now())
        calendars_watch_enqueue(calendar_ids=[*gone, *(c.pk for c in kept)])
    logger.info(
        "google calendars stored account=%s connected=%d disconnected=%d",
        account_id,
        len(kept),
        len(gone),
    )
    return kept


def google_account_disconnect(*, account_id: int) -> None:
    """The subscriber disconnects: channels stopped, grant revoked, calendars disconnected.

    Channels are stopped first, while the grant still works (only the creator of a channel
    can stop it). A failed revocation at Google is logged; the account is disconnected
    anyway.
    """
    account = GoogleAccount.objects.get(pk=account_id)
    calendar_ids = list(
        Calendar.objects.filter(google_account_id=account_id).values_list("pk", flat=True)
    )
    channels_teardown(calendar_ids=calendar_ids, force=True, concurrency=1)
    stored: Any = account.credentials
    token = None
    if isinstance(stored, dict):
        token = stored.get("refresh_token") or stored.get("token")
    if token and not google.token_revoke(token=token):
        logger.warning("google revocation not confirmed account=%s", account_id)
    now = timezone.now()
    with transaction.atomic():
        GoogleAccount.objects.filter(pk=account_id).update(
            revoked=True, revoked_at=now, credentials=None, updated_at=now
        )
        Calendar.objects.filter(google_account_id=account_id).update(
            connected=False, updated_at=now
        )
    logger.info("google account disconnected account=%s", account_id)
