"""Opaque, expiring tokens for the links Convoke puts in emails (docs/style.md rule 11).

A token is its claims (compact JSON, compressed) encrypted and authenticated with Fernet
(``cryptography``: AES-128-CBC and HMAC-SHA256) under a key derived from ``SECRET_KEY`` and
the token's purpose. A URL therefore reveals nothing of whom or what it names (issue 11,
finding 8: proxy logs and browser history keep URLs), no token opens for another purpose,
and changing one character breaks it. Each token carries its own expiry.

:func:`token_seal` makes one; :func:`token_open` reads it and tells a damaged, forged or
foreign token (:class:`TokenInvalid`) from a genuine one that has expired
(:class:`TokenExpired`, which carries the claims, so a page can still say whose link it
was). Keys in ``SECRET_KEY_FALLBACKS`` still open tokens made before a key rotation.

The two kinds of links build on this with one shape (:mod:`invitations.tokens` for RSVP,
:mod:`calendars.booking_tokens` for booking decisions): ``<kind>_token_make`` and
``<kind>_token_read``, raising ``<Kind>TokenInvalid`` or ``<Kind>TokenExpired``, the latter
answered 410 by both pages.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import zlib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac

# A token longer than this is not one of ours (and is not worth decrypting).
MAX_TOKEN_LENGTH = 4096
# New tokens start with this, so that a signed token of the format before (which holds ":")
# is never mistaken for one.
PREFIX = "t1"
# json.dumps(..., separators=(",", ":")) builds this encoder again on every call.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


class TokenInvalid(Exception):
    """Damaged, forged, made for another purpose or with an unknown key, or not a token."""


class TokenExpired(Exception):
    """A genuine token past its expiry; ``claims`` is what it carried."""

    def __init__(self, claims: dict[str, Any], expires_at: dt.datetime) -> None:
        super().__init__("the link has expired")
        self.claims = claims
        self.expires_at = expires_at


def _fernet(purpose: str) -> MultiFernet:
    secrets = (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", []))
    return _fernet_for(purpose, secrets)


@lru_cache(maxsize=32)
def _fernet_for(purpose: str, secrets: tuple[str, ...]) -> MultiFernet:
    """The keys of a purpose, derived once for each set of secrets (an email seals three)."""
    return MultiFernet(
        [
            Fernet(
                base64.urlsafe_b64encode(
                    salted_hmac(
                        purpose, "link token key", secret=secret, algorithm="sha256"
                    ).digest()
                )
            )
            for secret in secrets
        ]
    )


def token_seal(*, purpose: str, claims: Mapping[str, Any], expires_at: dt.datetime) -> str:
    """An opaque URL-safe token for ``claims`` (JSON values), valid until ``expires_at``."""
    if timezone.is_naive(expires_at):
        raise ValueError("expires_at must be an aware datetime")
    payload = {"c": dict(claims), "e": int(expires_at.timestamp())}
    data = zlib.compress(_COMPACT_JSON.encode(payload).encode("utf-8"))
    sealed = _fernet(purpose).encrypt(data)
    return PREFIX + sealed.decode("ascii").rstrip("=")


def is_sealed(token: str) -> bool:
    """Whether ``token`` is in this module's format (else perhaps an older signed one)."""
    return token.startswith(PREFIX) and ":" not in token


def token_open(
    token: str, *, purpose: str, now: dt.datetime | None = None
) -> tuple[dict[str, Any], dt.datetime]:
    """``(claims, expires_at)`` of a token made by :func:`token_seal` for ``purpose``.

    Raises :class:`TokenInvalid` or :class:`TokenExpired` (checked, against ``now``, after
    the token is authenticated, so an expired token is always a genuine one).
    """
    if not isinstance(token, str) or not is_sealed(token) or len(token) > MAX_TOKEN_LENGTH:
        raise TokenInvalid("not a link token")
    body = token[len(PREFIX) :]
    try:
        data = _fernet(purpose).decrypt((body + "=" * (-len(body) % 4)).encode("ascii"))
        payload = json.loads(zlib.decompress(data))
        claims = payload["c"]
        expires_at = dt.datetime.fromtimestamp(int(payload["e"]), tz=dt.UTC)
    except (InvalidToken, ValueError, TypeError, KeyError, OverflowError, zlib.error) as exc:
        raise TokenInvalid("the link is not valid") from exc
    if not isinstance(claims, dict):
        raise TokenInvalid("the link is not valid")
    if (now or timezone.now()) >= expires_at:
        raise TokenExpired(claims, expires_at)
    return claims, expires_at
