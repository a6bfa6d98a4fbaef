"""Building the emails of claimed deliveries, with what a whole batch needs read at once.

:func:`batch_inputs` reads, for a list of deliveries, in a constant number of queries: each
calendar message's stored parse and attachment (``Delivery.prepared``, no parse), the earlier
version of every REQUEST (whether it is an update, and what changed) and the stored
preferences of everyone the emails are for. :func:`delivery_email_build` then builds one
delivery's email from them without a query (a booking notice still reads its booking).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.core.mail import EmailMessage

from calendars.ical import ICalendarError, ITipMessage, Method, parse_itip
from calendars.models import User
from invitations.emails import email_build, users_by_address
from invitations.models import Delivery, DeliveryKind
from invitations.notices import notice_email_build
from invitations.prepared import PreparedMessage, prepared_load, prepared_message_load
from invitations.selectors import NEVER_DELIVERED

logger = logging.getLogger(__name__)


@dataclass
class BatchInputs:
    """What the emails of a batch are built from, beyond the deliveries themselves."""

    prepared: dict[int, PreparedMessage] = field(default_factory=dict)
    previous: dict[int, ITipMessage] = field(default_factory=dict)
    requested_before: set[int] = field(default_factory=set)
    users: dict[str, User] | None = None


def _is_request(delivery: Delivery) -> bool:
    return delivery.kind == DeliveryKind.ITIP and delivery.method == Method.REQUEST


def _previous_versions(requests: list[Delivery]) -> tuple[dict[int, ITipMessage], set[int]]:
    """For each REQUEST, the last REQUEST stored before it for the same event (whichever
    occurrence) and recipient that did not end dead or skipped
    (:func:`invitations.selectors.previous_request_body`'s choice, for a whole batch): the
    readable ones parsed, and the REQUESTs that have one at all (an update, even when the
    earlier version cannot be read). Two queries for the whole batch, one when none has an
    earlier version."""
    uids = {delivery.uid for delivery in requests}
    recipients = {delivery.recipient for delivery in requests}
    candidates: dict[tuple[str, str], list[int]] = defaultdict(list)
    rows = (
        Delivery.objects.filter(
            kind=DeliveryKind.ITIP,
            method=Method.REQUEST,
            uid__in=uids,
            recipient__in=recipients,
            pk__lt=max(delivery.pk for delivery in requests),
        )
        .exclude(status__in=NEVER_DELIVERED)
        .order_by("pk")
        .values_list("pk", "uid", "recipient")
    )
    for pk, uid, recipient in rows:
        candidates[(uid, recipient)].append(pk)
    chosen: dict[int, int] = {}
    for delivery in requests:
        earlier = [
            pk for pk in candidates.get((delivery.uid, delivery.recipient), []) if pk < delivery.pk
        ]
        if earlier:
            chosen[delivery.pk] = earlier[-1]
    if not chosen:
        return {}, set()
    parsed: dict[int, ITipMessage | None] = {}
    for pk, stored, body in Delivery.objects.filter(pk__in=set(chosen.values())).values_list(
        "pk", "prepared", "body"
    ):
        message = prepared_message_load(stored)
        if message is None and body is not None:
            try:
                message = parse_itip(bytes(body))
            except ICalendarError:
                logger.warning("previous version of an event unreadable; no change list")
        parsed[pk] = message
    readable = {
        pk: message
        for pk, previous_pk in chosen.items()
        if (message := parsed.get(previous_pk)) is not None
    }
    return readable, set(chosen)


def batch_inputs(deliveries: list[Delivery]) -> BatchInputs:
    """Read what :func:`delivery_email_build` needs for these deliveries (at most three
    queries, whatever their number)."""
    inputs = BatchInputs()
    addresses: set[str] = set()
    for delivery in deliveries:
        if delivery.kind != DeliveryKind.ITIP:
            continue
        prepared = prepared_load(delivery.prepared)
        if prepared is None:
            continue
        inputs.prepared[delivery.pk] = prepared
        if not (delivery.language and delivery.time_zone):
            primary = prepared.message.primary
            addresses |= {delivery.recipient, delivery.sender}
            if primary.organizer is not None:
                addresses.add(primary.organizer.address)
    requests = [delivery for delivery in deliveries if _is_request(delivery)]
    if requests:
        inputs.previous, inputs.requested_before = _previous_versions(requests)
    inputs.users = users_by_address(addresses) if addresses else {}
    return inputs


def delivery_email_build(*, delivery: Delivery, inputs: BatchInputs | None = None) -> EmailMessage:
    """The complete email for ``delivery`` (not sent): its calendar message rendered by
    :func:`invitations.emails.email_build`, or a booking notice rendered from its booking or
    account (:func:`invitations.notices.notice_email_build`).

    ``inputs`` (from :func:`batch_inputs`) saves the queries and the parse; without it they
    are made for this delivery alone. Raises :class:`~invitations.emails.EmailNotRenderable`
    (a ``ValueError``, with a reason for operators) or ``ValueError`` when the stored content
    cannot be rendered, which retrying cannot change, and
    :class:`~invitations.notices.DeliveryNotNeeded`.
    """
    if delivery.kind != DeliveryKind.ITIP:
        return notice_email_build(delivery=delivery)
    if inputs is None:
        inputs = batch_inputs([delivery])
    prepared = inputs.prepared.get(delivery.pk)
    # Without a stored language or zone, email_build uses the recipient's stored preferences,
    # else the organizer's, else English and the event's zone.
    return email_build(
        # The body is read (a deferred field after a claim) only when there is no stored parse.
        body=b"" if prepared is not None else bytes(delivery.body or b""),
        method=delivery.method,
        sender=delivery.sender,
        recipient=delivery.recipient,
        message_id=delivery.message_id_header,
        language=delivery.language or None,
        time_zone=delivery.time_zone or None,
        prepared=prepared,
        previous=inputs.previous.get(delivery.pk),
        requested_before=delivery.pk in inputs.requested_before,
        users=inputs.users if prepared is not None else None,
    )
