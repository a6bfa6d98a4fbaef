"""What every transport promises: send one built email, or raise a classified error.

A transport is the one adapter for one outside system (docs/style.md rule 5). It owns
authentication, timeouts and the mapping of that system's failures onto two kinds:

- :class:`TransientSendError`: the send certainly or probably did not happen and may succeed
  later (connection refused or dropped, timeouts, SMTP 4xx, HTTP 429 and 5xx). Retried with
  backoff by :func:`invitations.services.delivery_send`.
- :class:`PermanentSendError`: retrying the same email cannot help (SMTP 5xx for the
  recipient, HTTP 4xx other than 429, an address the provider refuses). The delivery is dead
  at once, where an operator sees it.

Error reasons are stored in ``Delivery.last_error`` and logged, so they never contain an
email address, a key or a provider's response body verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from django.core.mail import EmailMessage

MAX_REASON_LENGTH = 500


class SendError(Exception):
    """A send failed. ``reason`` is safe to store and log (no addresses, no secrets)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:MAX_REASON_LENGTH]


class TransientSendError(SendError):
    """The send may succeed later: retry with backoff."""


class PermanentSendError(SendError):
    """The send cannot succeed as it is: do not retry."""


@dataclass(frozen=True)
class SendResult:
    """What the provider said about an accepted email."""

    provider_message_id: str = ""


class Transport(Protocol):
    def send(self, *, email: EmailMessage, sender: str, recipient: str) -> SendResult:
        """Hand ``email`` to the outside system for ``recipient``.

        ``sender`` is the address the email is sent on behalf of (the iTIP sender).
        Raises :class:`TransientSendError` or :class:`PermanentSendError`.
        """
        ...
