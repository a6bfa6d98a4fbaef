"""Whether an inbound iTIP REPLY can be believed (issue 11, finding 7; RFC 5546 section 2.1.5).

An email's From header is written by whoever sends it, so a REPLY "from" an attendee proves
nothing by itself. :func:`inbound_reply_trust_check` believes one only when:

1. the receiving provider did not find it forged: when the inbound payload carries the
   provider's verdict (RFC 8601 ``Authentication-Results``, the topmost one, which the
   receiving server adds), a failing DMARC, or a failing SPF without a passing DKIM
   signature, refuses it. A verdict that does not fail changes nothing: the other rules
   still apply, so a forged "pass" gains nothing;
2. Convoke delivered an invitation to this event (UID) to this address, or the address is
   the bookee of the booking with this UID;
3. it answers the current version: its SEQUENCE is not below that of the last invitation
   Convoke delivered to this address (an older DTSTAMP than a REPLY already applied is
   ignored when it is applied, :func:`invitations.inbound.inbound_reply_apply`).

Refused REPLYs are stored with status ``refused`` and the reason, logged, and shown in the
admin; they are never applied.
"""

from __future__ import annotations

from email.message import Message

import authres
from django.db.models import Max

from calendars.ical import Method
from calendars.models import Booking
from invitations.models import Delivery, DeliveryKind, DeliveryStatus

FAILING = frozenset({"fail", "softfail", "permerror"})


class ReplyRefused(Exception):
    """The REPLY cannot be believed; ``reason`` says why (no address, safe to store)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _verdicts(message: Message) -> dict[str, str]:
    """``{method: result}`` of the topmost Authentication-Results header, {} when absent or
    unreadable (no verdict to use)."""
    headers = message.get_all("Authentication-Results") or []
    if not headers:
        return {}
    try:
        parsed = authres.AuthenticationResultsHeader.parse(
            "Authentication-Results: " + " ".join(str(headers[0]).split())
        )
    except (authres.AuthResError, ValueError, TypeError, AttributeError):
        return {}
    verdicts: dict[str, str] = {}
    for result in parsed.results:
        method, outcome = str(result.method).lower(), str(result.result).lower()
        # Several signatures of one method: one pass is enough (RFC 8601 section 2.7.1).
        if verdicts.get(method) != "pass":
            verdicts[method] = outcome
    return verdicts


def inbound_authentication_check(*, message: Message) -> None:
    """Rule 1 of the module docstring; raises :class:`ReplyRefused`."""
    verdicts = _verdicts(message)
    if verdicts.get("dmarc") in FAILING:
        raise ReplyRefused("the receiving server's DMARC check failed")
    if (
        "dmarc" not in verdicts
        and verdicts.get("spf") in FAILING
        and verdicts.get("dkim") != "pass"
    ):
        raise ReplyRefused("the receiving server's SPF check failed and no DKIM signature passed")


def inbound_reply_trust_check(*, uid: str, attendee: str, sequence: int) -> None:
    """Rules 2 and 3 of the module docstring for a REPLY from ``attendee`` about ``uid``;
    raises :class:`ReplyRefused`. Two queries."""
    invited = Delivery.objects.filter(
        kind=DeliveryKind.ITIP,
        status=DeliveryStatus.SENT,
        recipient__iexact=attendee,
        uid=uid,
        method=Method.REQUEST,
    ).aggregate(sequence=Max("sequence"))["sequence"]
    if invited is None:
        if Booking.objects.filter(ical_uid=uid, attendee_email__iexact=attendee).exists():
            return
        raise ReplyRefused("Convoke delivered no invitation to this event to this address")
    if sequence < invited:
        raise ReplyRefused(
            f"out of date: it answers SEQUENCE {sequence}, the invitation delivered last "
            f"has SEQUENCE {invited}"
        )
