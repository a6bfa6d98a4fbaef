"""Signed RSVP tokens for the Accept / Maybe / Decline links (docs/design.md 1.2, docs/style.md
rule 11).

A token is ``django.core.signing.TimestampSigner`` over a compact JSON payload with a salt of
its own, so a token signed for another purpose (password reset, booking decisions) never
verifies here. It carries the event UID, the attendee, the organizer, the RECURRENCE-ID of
the occurrence it answers for (None for the whole event) and its own expiry: the end of the
event's last occurrence plus a grace period (see :func:`rsvp_token_expiry`). Reading a token
tells a forged or damaged token (:class:`RsvpTokenInvalid`) from a genuine one that expired
(:class:`RsvpTokenExpired`), so the RSVP page can say which.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.utils import timezone

SALT = "convoke.invitations.rsvp"
_VERSION = 1


class RsvpTokenError(Exception):
    """The token cannot be used."""


class RsvpTokenInvalid(RsvpTokenError):
    """Forged, damaged, signed for something else, or not a token at all."""


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


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=SALT)


def rsvp_token_make(
    *,
    uid: str,
    attendee: str,
    organizer: str,
    recurrence_id: str | None,
    expires_at: dt.datetime,
) -> str:
    """A URL-safe signed token for one attendee's answer to one event (or occurrence)."""
    if timezone.is_naive(expires_at):
        raise ValueError("expires_at must be an aware datetime")
    payload = {
        "v": _VERSION,
        "u": uid,
        "a": attendee.lower(),
        "o": organizer.lower(),
        "r": recurrence_id,
        "e": int(expires_at.timestamp()),
    }
    return _signer().sign_object(payload, compress=True)


def rsvp_token_read(token: str) -> RsvpToken:
    """Verify ``token`` and return what it carries.

    Raises :class:`RsvpTokenInvalid` when the signature or the payload is wrong and
    :class:`RsvpTokenExpired` (carrying the token's content) when it is past its expiry.
    """
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise RsvpTokenInvalid("not an RSVP token")
    try:
        payload = _signer().unsign_object(token)
    except (signing.BadSignature, ValueError, UnicodeDecodeError) as exc:
        raise RsvpTokenInvalid("the RSVP link is not valid") from exc
    try:
        if payload["v"] != _VERSION:
            raise RsvpTokenInvalid("the RSVP link is from an unknown version")
        content = RsvpToken(
            uid=str(payload["u"]),
            attendee=str(payload["a"]),
            organizer=str(payload["o"]),
            recurrence_id=None if payload["r"] is None else str(payload["r"]),
            expires_at=dt.datetime.fromtimestamp(int(payload["e"]), tz=dt.UTC),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise RsvpTokenInvalid("the RSVP link is not valid") from exc
    if _now() >= content.expires_at:
        raise RsvpTokenExpired(content)
    return content


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
