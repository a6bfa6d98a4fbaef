"""Fixtures of the RSVP tests (Radicale with an account per organizer, a CalDAV proxy) and of
the inbound-email tests (a fake Brevo API)."""

from tests.fakes.brevo_inbound import brevo_api
from tests.invitations.rsvp_support import dav_proxy, organizer

__all__ = ["brevo_api", "dav_proxy", "organizer"]
