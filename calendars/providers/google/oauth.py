"""OAuth endpoints: authorization code flow (RFC 6749 section 4.1, PKCE RFC 7636), revocation."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import requests
from django.conf import settings
from google.auth import exceptions as google_auth_exceptions
from google.auth import jwt as google_jwt

from calendars.providers.google.errors import OAuthError, Unavailable
from calendars.providers.google.types import SCOPES, TokenGrant

logger = logging.getLogger(__name__)

# --- OAuth endpoints (authorization code flow, RFC 6749 section 4.1, PKCE RFC 7636) -------------


def authorization_url(*, redirect_uri: str, state: str, code_challenge: str) -> str:
    """The consent page address: offline access (a refresh token), PKCE S256."""
    params = {
        "client_id": settings.GOOGLE_CLIENT_ID,
        "redirect_uri": redirect_uri,
        "response_type": "code",
        "scope": " ".join(SCOPES),
        "access_type": "offline",
        "prompt": "consent",
        "include_granted_scopes": "true",
        "state": state,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    return f"{settings.GOOGLE_AUTH_URI}?{urlencode(params)}"


def authorization_code_exchange(*, code: str, redirect_uri: str, code_verifier: str) -> TokenGrant:
    """Trade an authorization code for tokens at ``GOOGLE_TOKEN_URI``.

    Done with ``requests`` rather than requests-oauthlib: oauthlib refuses a plain-http token
    endpoint and treats a narrower consent as an error unless environment variables say
    otherwise, while we check the granted scopes ourselves. The id_token comes straight from
    the token endpoint over TLS, which OpenID Connect Core 3.1.3.7 accepts instead of
    verifying its signature; only its ``sub`` and ``email`` are read.
    """
    try:
        response = requests.post(
            settings.GOOGLE_TOKEN_URI,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": settings.GOOGLE_CLIENT_ID,
                "client_secret": settings.GOOGLE_CLIENT_SECRET,
                "code_verifier": code_verifier,
            },
            timeout=settings.GOOGLE_API_TIMEOUT_SECONDS,
        )
    except requests.RequestException as exc:
        raise Unavailable("no answer from Google's token endpoint", reason="connection") from exc
    try:
        data = response.json()
    except ValueError:
        data = {}
    if response.status_code >= 500:
        raise Unavailable("Google's token endpoint failed", status=response.status_code)
    if response.status_code != 200 or not isinstance(data, dict) or "access_token" not in data:
        error = str(data.get("error", "")) if isinstance(data, dict) else ""
        raise OAuthError(
            f"Google refused the authorization code ({error or response.status_code})",
            status=response.status_code,
            reason=error or "oauth_error",
        )
    claims: Mapping[str, Any] = {}
    if data.get("id_token"):
        try:
            claims = google_jwt.decode(data["id_token"], verify=False)
        except (ValueError, google_auth_exceptions.GoogleAuthError) as exc:
            raise OAuthError("Google's id_token is malformed", reason="bad_id_token") from exc
    if not claims.get("sub"):
        raise OAuthError("Google did not say which account consented", reason="no_subject")
    expires_in = data.get("expires_in")
    expiry = (
        dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=int(expires_in))
        if expires_in
        else None
    )
    return TokenGrant(
        access_token=str(data["access_token"]),
        refresh_token=data.get("refresh_token"),
        expiry=expiry,
        scopes=tuple(str(data.get("scope", "")).split()),
        subject=str(claims["sub"]),
        email=str(claims.get("email", "")),
    )


def token_revoke(*, token: str) -> bool:
    """Revoke a grant at ``GOOGLE_REVOKE_URI``. True when Google confirmed it (or it was dead)."""
    try:
        response = requests.post(
            settings.GOOGLE_REVOKE_URI,
            data={"token": token},
            timeout=settings.GOOGLE_API_TIMEOUT_SECONDS,
        )
    except requests.RequestException:
        logger.warning("google token revocation: no answer")
        return False
    if response.status_code == 200:
        return True
    # 400 invalid_token: already revoked or expired, which is what we wanted.
    return response.status_code == 400
