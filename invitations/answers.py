"""The answers a person can give to an invitation: one vocabulary for the RSVP links, the
RSVP page, the emails' buttons and mail clients' own REPLYs."""

from __future__ import annotations

from enum import StrEnum

from calendars.ical import PartStat


class RsvpAction(StrEnum):
    """The ``action`` of an RSVP link (RFC 5546 section 3.2.3), named after the PARTSTAT it
    records (RFC 5545 section 3.2.12)."""

    ACCEPTED = "accepted"
    TENTATIVE = "tentative"
    DECLINED = "declined"

    @property
    def partstat(self) -> PartStat:
        return PartStat(self.value.upper())

    @classmethod
    def of(cls, partstat: PartStat | str) -> RsvpAction | None:
        """The action that records ``partstat``; None for NEEDS-ACTION, DELEGATED, others."""
        return next((action for action in cls if action.partstat == str(partstat)), None)
