"""One adapter per outside system that delivers email (STYLE.md rule 5)."""

from __future__ import annotations

from django.conf import settings

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
    "mailer_transport",
    "transport_for",
]


def transport_for(kind: str) -> Transport:
    """The adapter for a ``Delivery.transport`` value."""
    if kind == DeliveryTransport.MESSAGES:
        return MessagesApiTransport()
    if kind in MAILER_TRANSPORTS:
        return MailerTransport()
    raise ValueError(f"unknown transport {kind!r}")


def mailer_transport() -> DeliveryTransport:
    """The label of a delivery through the configured mailer: files, SMTP or Brevo."""
    return DeliveryTransport(settings.MAIL_ROUTE)
