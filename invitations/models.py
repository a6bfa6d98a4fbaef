"""Deliveries: one email to send for one scheduling message and one recipient.

A delivery moves ``pending -> sending -> sent``; a transient failure moves it to ``failed``
with a ``next_attempt_at`` (the periodic sweep re-enqueues it when due), a permanent one or
the last allowed attempt to ``dead`` where an operator sees and retries it. The move to
``sending`` is a conditional UPDATE, so two workers never send one delivery twice.
"""

from __future__ import annotations

from django.db import models


class DeliveryTransport(models.TextChoices):
    # The Django mailer (settings.MAILERS), labelled by where it leads (settings.MAIL_ROUTE).
    SMTP = "smtp", "SMTP relay"
    BREVO = "brevo", "Brevo"
    FILE = "file", "Files (embedded default)"
    MESSAGES = "messages", "La Suite Messages API"


# The values sent through the Django mailer.
MAILER_TRANSPORTS = frozenset(
    {DeliveryTransport.SMTP, DeliveryTransport.BREVO, DeliveryTransport.FILE}
)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed, will retry"
    DEAD = "dead", "Dead"


# Statuses a worker may claim for sending.
CLAIMABLE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    def claimable(self) -> DeliveryQuerySet:
        return self.filter(status__in=CLAIMABLE_STATUSES)


class Delivery(models.Model):
    message = models.ForeignKey(
        "scheduling.SchedulingMessage", on_delete=models.CASCADE, related_name="deliveries"
    )
    recipient = models.EmailField(max_length=254)
    transport = models.CharField(max_length=16, choices=DeliveryTransport.choices)
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When the current or last attempt started."
    )
    last_error = models.CharField(
        max_length=500, blank=True, help_text="Without secrets or addresses."
    )
    provider_message_id = models.CharField(max_length=255, blank=True)
    message_id_header = models.CharField(
        "Message-ID", max_length=255, unique=True, help_text="The same on every attempt."
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "recipient"], name="delivery_one_per_message_recipient"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=DeliveryStatus.values), name="delivery_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(transport__in=DeliveryTransport.values),
                name="delivery_transport_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_status_due"),
        ]

    def __str__(self) -> str:
        return f"delivery #{self.pk} ({self.status})"


class InboundReplyStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPLIED = "applied", "Applied"
    IGNORED = "ignored", "Ignored"
    FAILED = "failed", "Failed"


class InboundReply(models.Model):
    """An iTIP REPLY a mail client sent by email (its own Accept / Decline buttons), received
    through the inbound webhook and applied to the organizer's event on the CalDAV server
    (:mod:`invitations.inbound`). Stored before it is applied, so a CalDAV outage only delays
    it; the unique body per attendee makes a replayed webhook a no-op."""

    body = models.BinaryField(help_text="The text/calendar part exactly as received.")
    body_sha256 = models.CharField(max_length=64)
    attendee = models.EmailField(max_length=254, help_text="The replying attendee (= From).")
    organizer = models.EmailField(max_length=254)
    uid = models.CharField("UID", max_length=1024)
    dtstamp = models.DateTimeField("DTSTAMP", null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=InboundReplyStatus.choices, default=InboundReplyStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=200, blank=True, help_text="Without addresses.")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "inbound replies"
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["attendee", "body_sha256"], name="inbound_reply_once"),
            models.CheckConstraint(
                condition=models.Q(status__in=InboundReplyStatus.values),
                name="inbound_reply_status_valid",
            ),
        ]
        indexes = [models.Index(fields=["uid", "attendee"], name="inbound_reply_uid_attendee")]

    def __str__(self) -> str:
        return f"inbound reply #{self.pk} ({self.status})"
