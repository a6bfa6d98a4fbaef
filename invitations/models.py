"""The outbox: one row per email Convoke sends, whatever the email is about.

A :class:`Delivery` carries everything needed to build its email (docs/architecture.md,
"the outbox"): its kind, the sender and recipient, and for calendar messages the iTIP
method and body; a booking email names its booking, the revoked-grant email its Google
account, and is rendered from them when it is sent. It never refers to how its content
arrived: the scheduling callback, the RSVP page and the bookings all create deliveries
through :func:`invitations.services.delivery_create`.

A delivery moves ``pending -> sending -> sent``; a transient failure moves it to ``failed``
with a ``next_attempt_at`` (the periodic sweep re-enqueues it when due), a permanent one or
the last allowed attempt to ``dead`` where an operator sees and retries it, and an email
whose reason went away before it left (a booking decided meanwhile) to ``skipped``. The
move to ``sending`` is a conditional UPDATE, so two workers never send one delivery twice.
"""

from __future__ import annotations

from django.db import models

from calendars.ical import ITIP_EMAIL_METHODS


class DeliveryKind(models.TextChoices):
    """What the email is: a calendar message rendered from its iTIP body, or one of the
    bookings' notices rendered from the booking or account it names."""

    ITIP = "itip", "Calendar message (iTIP)"
    BOOKING_REQUEST = "booking_request", "New booking request (to the subscriber)"
    BOOKING_AUTO_CONFIRMED = "booking_auto_confirmed", "Booking confirmed (to the subscriber)"
    GOOGLE_REVOKED = "google_revoked", "Google access revoked (to the subscriber)"


# The kinds rendered from a booking, and the one rendered from a Google account.
BOOKING_NOTICE_KINDS = (DeliveryKind.BOOKING_REQUEST, DeliveryKind.BOOKING_AUTO_CONFIRMED)

ITIP_METHOD_CHOICES = [(method.value, method.value.title()) for method in ITIP_EMAIL_METHODS]


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
    SKIPPED = "skipped", "Not needed any more"


# Statuses a worker may claim for sending.
CLAIMABLE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    def claimable(self) -> DeliveryQuerySet:
        return self.filter(status__in=CLAIMABLE_STATUSES)


class Delivery(models.Model):
    kind = models.CharField(max_length=32, choices=DeliveryKind.choices, default=DeliveryKind.ITIP)
    sender = models.EmailField(
        max_length=254, help_text="On whose behalf it is sent (the iTIP sender)."
    )
    recipient = models.EmailField(max_length=254)
    # The calendar message (kind itip): what the worker renders, exactly as received or built.
    method = models.CharField("iTIP method", max_length=8, choices=ITIP_METHOD_CHOICES, blank=True)
    body = models.BinaryField("iCalendar body", null=True, blank=True)
    uid = models.CharField("UID", max_length=1024, blank=True)
    recurrence_id = models.CharField(
        "RECURRENCE-ID", max_length=64, blank=True, help_text="ISO 8601, empty for the series."
    )
    sequence = models.PositiveIntegerField("SEQUENCE", default=0)
    dtstamp = models.DateTimeField("DTSTAMP", null=True, blank=True)
    # The body as the callback parsed it, with its calendar attachment (invitations.prepared):
    # the worker renders from it instead of parsing the body again.
    prepared = models.BinaryField(null=True, blank=True, editable=False)
    # The recipient's language and time zone when the sender knows them (else looked up).
    language = models.CharField(max_length=8, blank=True)
    time_zone = models.CharField(max_length=64, blank=True)
    booking = models.ForeignKey(
        "calendars.Booking",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
        # Indexed only where set (Meta.indexes): most deliveries have none.
        db_index=False,
    )
    google_account = models.ForeignKey(
        "calendars.GoogleAccount",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
        # Indexed only where set (Meta.indexes): most deliveries have none.
        db_index=False,
    )
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
    # Unique through Meta.constraints: a unique field would also get a LIKE index on
    # PostgreSQL, which no query uses and every write of a delivery maintains.
    message_id_header = models.CharField(
        "Message-ID", max_length=255, help_text="The same on every attempt."
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "deliveries"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["message_id_header"], name="delivery_message_id"),
            models.CheckConstraint(
                condition=models.Q(status__in=DeliveryStatus.values), name="delivery_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(transport__in=DeliveryTransport.values),
                name="delivery_transport_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(kind__in=DeliveryKind.values), name="delivery_kind_valid"
            ),
            # A calendar message carries what the worker renders: its method and body.
            models.CheckConstraint(
                condition=~models.Q(kind=DeliveryKind.ITIP)
                | models.Q(method__in=[value for value, _label in ITIP_METHOD_CHOICES])
                & models.Q(body__isnull=False),
                name="delivery_itip_has_method_and_body",
            ),
        ]
        indexes = [
            # The sweep's and the operators' reads; a sent delivery (most of the table, and
            # the last write of each) is none of theirs, so its row version adds no entry.
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=~models.Q(status=DeliveryStatus.SENT),
                name="delivery_status_due",
            ),
            models.Index(
                fields=["booking"],
                condition=models.Q(booking__isnull=False),
                name="delivery_booking",
            ),
            models.Index(
                fields=["google_account"],
                condition=models.Q(google_account__isnull=False),
                name="delivery_google_account",
            ),
            models.Index(fields=["uid", "recipient"], name="delivery_uid_recipient"),
            # The engine's claim: the oldest pending deliveries (invitations.services.claims).
            models.Index(
                fields=["id"],
                condition=models.Q(status=DeliveryStatus.PENDING),
                name="delivery_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"delivery #{self.pk} ({self.status})"


class InboundReplyStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPLIED = "applied", "Applied"
    IGNORED = "ignored", "Ignored"
    FAILED = "failed", "Failed"
    REFUSED = "refused", "Refused (not believed)"


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
