"""RSVP tokens for the Accept / Maybe / Decline links (docs/design.md 1.2, docs/style.md rule 11).

A token names the event UID, the attendee, the organizer, the RECURRENCE-ID of the occurrence
it answers for (None for the whole event) and its own expiry: the end of the event's last
occurrence plus a grace period (:func:`rsvp_token_expiry`). It is sealed by
:mod:`calendars.link_tokens` (encrypted and authenticated under a purpose of its own), so the
URL reveals no address. Reading a token tells a forged or damaged token
(:class:`RsvpTokenInvalid`) from a genuine one that expired (:class:`RsvpTokenExpired`), so the
RSVP page can say which (400 or 410).

Links sent before tokens were sealed are signed (``TimestampSigner``, same salt) and readable
JSON; they keep working until their own expiry (a year at most), through
:func:`_legacy_read`, which can go once the last of them has expired.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.utils import timezone

from calendars.link_tokens import TokenExpired, TokenInvalid, token_open, token_seal

SALT = "convoke.invitations.rsvp"
_LEGACY_VERSION = 1


class RsvpTokenError(Exception):
    """The token cannot be used."""


class RsvpTokenInvalid(RsvpTokenError):
    """Forged, damaged, made for something else, or not a token at all."""


class RsvpTokenExpired(RsvpTokenError):
    """A genuine token whose event is over (plus the grace period)."""

    def __init__(self, token: RsvpToken) -> None:
        super().__init__("the RSVP link has expired")
        self.token = token


@dataclass(frozen=True)
class RsvpToken:
    uid: str
    attendee: str
    organizer: str
    recurrence_id: str | None
    expires_at: dt.datetime


def _now() -> dt.datetime:
    """The current time; tests move it with ``django.utils.timezone.now``'s seam."""
    return timezone.now()


def rsvp_token_make(
    *,
    uid: str,
    attendee: str,
    organizer: str,
    recurrence_id: str | None,
    expires_at: dt.datetime,
) -> str:
    """An opaque URL-safe token for one attendee's answer to one event (or occurrence)."""
    claims = {"u": uid, "a": attendee.lower(), "o": organizer.lower(), "r": recurrence_id}
    return token_seal(purpose=SALT, claims=claims, expires_at=expires_at)


def _content(claims: dict[str, Any], expires_at: dt.datetime) -> RsvpToken:
    try:
        return RsvpToken(
            uid=str(claims["u"]),
            attendee=str(claims["a"]),
            organizer=str(claims["o"]),
            recurrence_id=None if claims["r"] is None else str(claims["r"]),
            expires_at=expires_at,
        )
    except (KeyError, TypeError) as exc:
        raise RsvpTokenInvalid("the RSVP link is not valid") from exc


def rsvp_token_read(token: str) -> RsvpToken:
    """Verify ``token`` and return what it carries.

    Raises :class:`RsvpTokenInvalid` when it is not a genuine RSVP token and
    :class:`RsvpTokenExpired` (carrying the token's content) when it is past its expiry.
    """
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise RsvpTokenInvalid("not an RSVP token")
    if ":" in token:
        content = _legacy_read(token)
        if _now() >= content.expires_at:
            raise RsvpTokenExpired(content)
        return content
    try:
        claims, expires_at = token_open(token, purpose=SALT, now=_now())
    except TokenExpired as exc:
        raise RsvpTokenExpired(_content(exc.claims, exc.expires_at)) from exc
    except TokenInvalid as exc:
        raise RsvpTokenInvalid("the RSVP link is not valid") from exc
    return _content(claims, expires_at)


def _legacy_read(token: str) -> RsvpToken:
    """A token signed (not sealed) by the version before: ``{"v": 1, "u", "a", "o", "r",
    "e"}`` under ``TimestampSigner(salt=SALT)``."""
    try:
        payload = signing.TimestampSigner(salt=SALT).unsign_object(token)
    except (signing.BadSignature, ValueError, UnicodeDecodeError) as exc:
        raise RsvpTokenInvalid("the RSVP link is not valid") from exc
    try:
        if payload["v"] != _LEGACY_VERSION:
            raise RsvpTokenInvalid("the RSVP link is from an unknown version")
        expires_at = dt.datetime.fromtimestamp(int(payload["e"]), tz=dt.UTC)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise RsvpTokenInvalid("the RSVP link is not valid") from exc
    return _content(payload, expires_at)


def rsvp_token_expiry(
    *, last_end: dt.datetime | None, now: dt.datetime | None = None
) -> dt.datetime:
    """When the links of an event stop working.

    ``last_end`` is the end of the event's last occurrence (None for a series without end):
    the token lives until then plus ``RSVP_TOKEN_GRACE_DAYS``. An endless series gets
    ``RSVP_TOKEN_OPEN_SERIES_DAYS`` from now, so no link lives for ever.
    """
    grace = dt.timedelta(days=settings.RSVP_TOKEN_GRACE_DAYS)
    if last_end is None:
        return (now or _now()) + dt.timedelta(days=settings.RSVP_TOKEN_OPEN_SERIES_DAYS)
    return last_end + grace
