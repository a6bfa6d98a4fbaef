"""One adapter per outside system that delivers email (docs/style.md rule 5)."""

from __future__ import annotations

from invitations.models import MAILER_TRANSPORTS, DeliveryTransport
from invitations.transports.base import (
    PermanentSendError,
    SendError,
    SendResult,
    TransientSendError,
    Transport,
)
from invitations.transports.mailer import MailerTransport
from invitations.transports.messages_api import MessagesApiTransport

__all__ = [
    "PermanentSendError",
    "SendError",
    "SendResult",
    "TransientSendError",
    "Transport",
    "transport_for",
]


def transport_for(kind: str) -> Transport:
    """The adapter for a ``Delivery.transport`` value."""
    if kind == DeliveryTransport.MESSAGES:
        return MessagesApiTransport()
    if kind in MAILER_TRANSPORTS:
        return MailerTransport()
    raise ValueError(f"unknown transport {kind!r}")
