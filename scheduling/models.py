"""iTIP messages received from the CalDAV server's scheduling callback (docs/architecture.md).

A message is stored exactly once: the CalDAV server may post the same message twice (a retry
after a timeout on its side, two web processes receiving copies at the same instant), and
the unique ``dedupe_key`` turns the second copy into a no-op at the database level.

The message is the record of what arrived (its headers and identity); what is to be sent,
the body included, is its :class:`~invitations.models.Delivery` in the outbox, which the
message points to. The outbox never points back.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

from django.db import models

from calendars.ical import ITIP_EMAIL_METHODS

# The iTIP methods (RFC 5546 section 1.4) the callback accepts: those Convoke emails.
METHOD_CHOICES = [(method.value, method.value.title()) for method in ITIP_EMAIL_METHODS]


def dedupe_key_compute(
    *,
    method: str,
    sender: str,
    recipient: str,
    uid: str,
    recurrence_id: str,
    sequence: int,
    dtstamp: str,
    body_sha256: str,
    answer: str = "",
) -> str:
    """The identity of one iTIP message for one recipient.

    Two callbacks are the same message when method, sender, recipient, UID, RECURRENCE-ID,
    SEQUENCE and DTSTAMP agree (RFC 5546 section 2.1.5: DTSTAMP orders messages of one
    SEQUENCE). The sender matters for REPLY: two attendees answering the same event within
    one second send two messages that agree on everything else.
    Without a DTSTAMP (not valid iTIP, but seen in the wild) the body itself stands in for it,
    so only a byte-identical retry is folded. ``answer`` (a REPLY's PARTSTATs, RFC 5546
    section 3.2.3) tells apart two answers of one attendee within one second: DTSTAMP has
    whole seconds, and a changed mind must reach the organizer too.
    """
    parts = [
        method,
        sender,
        recipient,
        uid,
        recurrence_id,
        str(sequence),
        dtstamp if dtstamp else f"body:{body_sha256}",
    ]
    if answer:
        parts.append(answer)
    # The unit separator cannot occur in header values or iCalendar property values.
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


class SchedulingMessage(models.Model):
    """One iTIP message for one recipient, as posted by the CalDAV server."""

    delivery = models.OneToOneField(
        "invitations.Delivery",
        on_delete=models.CASCADE,
        related_name="scheduling_message",
        help_text="The email of this message, with the body exactly as received.",
    )
    body_sha256 = models.CharField(max_length=64)
    method = models.CharField(max_length=8, choices=METHOD_CHOICES)
    sender = models.EmailField(max_length=254)
    recipient = models.EmailField(max_length=254)
    uid = models.CharField("UID", max_length=1024)
    recurrence_id = models.CharField(
        "RECURRENCE-ID", max_length=64, blank=True, help_text="ISO 8601, empty for the series."
    )
    sequence = models.PositiveIntegerField("SEQUENCE", default=0)
    dtstamp = models.DateTimeField("DTSTAMP", null=True, blank=True)
    is_mailbox = models.BooleanField(
        default=False, help_text="The sender's calendar is linked to a La Suite Messages mailbox."
    )
    org_id = models.CharField("organisation id", max_length=255, blank=True)
    dedupe_key = models.CharField(max_length=64, editable=False)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["dedupe_key"], name="scheduling_message_dedupe"),
            models.CheckConstraint(
                condition=models.Q(method__in=[value for value, _label in METHOD_CHOICES]),
                name="scheduling_message_method_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["uid", "recipient"], name="scheduling_message_uid_rcpt"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.uid} (#{self.pk})"

    @property
    def body(self) -> bytes:
        """The iCalendar body exactly as received (stored once, on the delivery)."""
        return bytes(self.delivery.body or b"")


class RefusalReason(StrEnum):
    """Why a callback was refused: the ``reason`` label of ``convoke_callbacks_refused``."""

    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNAUTHORIZED = "unauthorized"
    HEADERS = "headers"
    TOO_LARGE = "too_large"
    CONTENT_TYPE = "content_type"
    BODY = "body"
    BUDGET = "budget"
    METHOD = "method"
    SENDER = "sender"
    RECIPIENT = "recipient"
    ORGANIZER = "organizer"


REFUSALS_RECENT = "callbacks_refused"
