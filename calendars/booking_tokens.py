"""Signed, expiring tokens of the subscriber's Confirm / Deny links (docs/design.md section 2).

A token carries the booking's id and iCalendar UID, signed with Django's signing (HMAC with
``SECRET_KEY``) under a salt of its own, so that no other signed value of the project can
stand in for it, and a timestamp checked against ``BOOKING_DECISION_TOKEN_MAX_AGE_DAYS``. The
action is not in the token: one link per action would change nothing about who may decide.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

SALT = "convoke.bookings.decision"


class DecisionTokenInvalid(Exception):
    """The token is malformed, tampered with, or signed for another purpose."""


class DecisionTokenExpired(DecisionTokenInvalid):
    """The token was valid but is older than ``BOOKING_DECISION_TOKEN_MAX_AGE_DAYS``."""


@dataclass(frozen=True)
class DecisionClaim:
    booking_id: int
    ical_uid: str


def decision_token_make(*, booking_id: int, ical_uid: str) -> str:
    return signing.dumps({"b": booking_id, "u": ical_uid}, salt=SALT, compress=True)


def decision_token_read(token: str) -> DecisionClaim:
    """The booking a token names. Raises :class:`DecisionTokenInvalid` or ``...Expired``."""
    if not token or len(token) > 1000:
        raise DecisionTokenInvalid("missing or oversized token")
    max_age = dt.timedelta(days=settings.BOOKING_DECISION_TOKEN_MAX_AGE_DAYS)
    try:
        data = signing.loads(token, salt=SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise DecisionTokenExpired("the link has expired") from exc
    except signing.BadSignature as exc:
        raise DecisionTokenInvalid("bad signature") from exc
    if not isinstance(data, dict):
        raise DecisionTokenInvalid("unexpected content")
    booking_id, ical_uid = data.get("b"), data.get("u")
    if not isinstance(booking_id, int) or not isinstance(ical_uid, str):
        raise DecisionTokenInvalid("unexpected content")
    return DecisionClaim(booking_id=booking_id, ical_uid=ical_uid)
