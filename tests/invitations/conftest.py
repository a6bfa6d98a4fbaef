"""Fixtures of the RSVP tests (Radicale with an account per organizer, a CalDAV proxy)."""

from tests.invitations.rsvp_support import dav_proxy, organizer, radicale_accounts

__all__ = ["dav_proxy", "organizer", "radicale_accounts"]
