"""Tokens of the subscriber's Confirm / Deny links (docs/design.md section 2).

Same shape as the RSVP tokens (:mod:`invitations.tokens`): sealed by
:mod:`calendars.link_tokens` under a purpose of their own, so the URL reveals nothing, with
their expiry inside (``BOOKING_DECISION_TOKEN_MAX_AGE_DAYS`` after they are made); reading one
raises :class:`DecisionTokenInvalid` or :class:`DecisionTokenExpired` (a 410, like an expired
RSVP link). The action is not in the token: one link per action would change nothing about
who may decide.

Links sent before tokens were sealed are signed with Django's signing under the same salt
and keep working until they are ``BOOKING_DECISION_TOKEN_MAX_AGE_DAYS`` old.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.utils import timezone

from calendars.link_tokens import TokenExpired, TokenInvalid, token_open, token_seal

SALT = "convoke.bookings.decision"


class DecisionTokenError(Exception):
    """The token cannot be used."""


class DecisionTokenInvalid(DecisionTokenError):
    """The token is malformed, tampered with, or made for another purpose."""


class DecisionTokenExpired(DecisionTokenError):
    """A genuine token older than ``BOOKING_DECISION_TOKEN_MAX_AGE_DAYS``."""


@dataclass(frozen=True)
class DecisionClaim:
    booking_id: int
    ical_uid: str


def _now() -> dt.datetime:
    """The current time; tests move it with ``django.utils.timezone.now``'s seam."""
    return timezone.now()


def decision_token_make(*, booking_id: int, ical_uid: str) -> str:
    expires_at = _now() + dt.timedelta(days=settings.BOOKING_DECISION_TOKEN_MAX_AGE_DAYS)
    return token_seal(purpose=SALT, claims={"b": booking_id, "u": ical_uid}, expires_at=expires_at)


def _claim(data: Any) -> DecisionClaim:
    if not isinstance(data, dict):
        raise DecisionTokenInvalid("unexpected content")
    booking_id, ical_uid = data.get("b"), data.get("u")
    if not isinstance(booking_id, int) or not isinstance(ical_uid, str):
        raise DecisionTokenInvalid("unexpected content")
    return DecisionClaim(booking_id=booking_id, ical_uid=ical_uid)


def decision_token_read(token: str) -> DecisionClaim:
    """The booking a token names. Raises :class:`DecisionTokenInvalid` or ``...Expired``."""
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise DecisionTokenInvalid("missing or oversized token")
    if ":" in token:
        return _legacy_read(token)
    try:
        claims, _ = token_open(token, purpose=SALT, now=_now())
    except TokenExpired as exc:
        raise DecisionTokenExpired("the link has expired") from exc
    except TokenInvalid as exc:
        raise DecisionTokenInvalid("bad token") from exc
    return _claim(claims)


def _legacy_read(token: str) -> DecisionClaim:
    """A token signed (not sealed) by the version before, with its signing time."""
    max_age = dt.timedelta(days=settings.BOOKING_DECISION_TOKEN_MAX_AGE_DAYS)
    try:
        data = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise DecisionTokenExpired("the link has expired") from exc
    except signing.BadSignature as exc:
        raise DecisionTokenInvalid("bad signature") from exc
    return _claim(data)
