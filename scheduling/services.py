"""Receiving one iTIP message from the CalDAV server's scheduling callback (docs/design.md 1.1).

:func:`scheduling_message_receive` checks the message against its headers (RFC 5546
section 3.2: who may send which method to whom), stores it with its delivery in one
transaction, and returns; the email goes out from a worker after the commit. A copy of a
message already stored (same method, recipient, UID, RECURRENCE-ID, SEQUENCE and DTSTAMP)
finds the unique ``dedupe_key`` taken and returns the stored one: nothing new, no second
email, also when both copies arrive at the same instant on two web processes.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
    transaction,
)
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Field
from django.utils import timezone

from calendars.ical import BudgetExceeded, ICalendarError, ITipMessage, Method, parse_itip
from calendars.metrics import counter_increment, recent_count_add
from calendars.models import Booking, TransitionSource
from calendars.services import booking_attendee_answer_record
from invitations.models import Delivery, DeliveryKind
from invitations.prepared import prepared_dump
from invitations.services import ItipContent, deliveries_nudge_on_commit, delivery_new
from scheduling.cursors import prepared_cursor
from scheduling.models import REFUSALS_RECENT, SchedulingMessage, dedupe_key_compute

logger = logging.getLogger(__name__)

MAX_UID_BYTES = 1024
MAX_SEQUENCE = 2**31 - 1


class CallbackRejected(ValueError):
    """The message cannot be accepted as it is; ``reason`` says why (safe to return)."""

    def __init__(self, reason: str, *, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class CallbackStoreFailed(Exception):
    """The message was valid but could not be stored (the database failed)."""


@dataclass(frozen=True)
class ReceiveResult:
    message: SchedulingMessage
    delivery: Delivery
    created: bool


def _itip_parse(body: bytes) -> ITipMessage:
    if not body.strip():
        raise CallbackRejected("The body is empty; expected an iTIP VCALENDAR.", code="body")
    try:
        return parse_itip(body)
    except BudgetExceeded as exc:
        raise CallbackRejected(
            f"The body asks for more than Convoke reads (limit: {exc.limit}): {exc}.",
            code="budget",
        ) from exc
    except ICalendarError as exc:
        raise CallbackRejected(
            f"The body is not a usable iCalendar object: {exc}.", code="body"
        ) from exc


def _itip_check(itip: ITipMessage, *, method: Method, sender: str, recipient: str) -> None:
    """RFC 5546 rules for one message and one recipient; raises :class:`CallbackRejected`."""
    if itip.method is not None and itip.method.value != method.value:
        raise CallbackRejected(
            f"The body's METHOD ({itip.method.value}) does not match the method header "
            f"({method.value}).",
            code="method",
        )
    uids = {event.uid for event in itip.events}
    if "" in uids:
        raise CallbackRejected("A VEVENT has no UID (RFC 5545 section 3.8.4.7).", code="body")
    if len(uids) > 1:
        raise CallbackRejected(
            f"The body holds {len(uids)} different event UIDs; an iTIP message is about one "
            "event (RFC 5546 section 1.4).",
            code="body",
        )
    if len(itip.uid.encode("utf-8")) > MAX_UID_BYTES:
        raise CallbackRejected(f"The UID is longer than {MAX_UID_BYTES} bytes.", code="body")
    if any(event.sequence > MAX_SEQUENCE for event in itip.events):
        raise CallbackRejected(f"SEQUENCE is larger than {MAX_SEQUENCE}.", code="body")

    organizers = {event.organizer.address for event in itip.events if event.organizer}
    if not organizers:
        raise CallbackRejected(
            "The event has no ORGANIZER; iTIP messages need one (RFC 5546 section 3.2).",
            code="organizer",
        )
    attendees = {attendee.address for event in itip.events for attendee in event.attendees}
    if method in (Method.REQUEST, Method.CANCEL):
        if organizers != {sender}:
            raise CallbackRejected(
                f"The sender header does not match the event's ORGANIZER; a {method.value} "
                "comes from the organizer.",
                code="sender",
            )
        if recipient not in attendees:
            raise CallbackRejected(
                "The recipient header is not an ATTENDEE of the event.", code="recipient"
            )
    else:  # REPLY: from an attendee to the organizer
        if sender not in attendees:
            raise CallbackRejected(
                "The sender header is not an ATTENDEE of the event; a REPLY comes from one.",
                code="sender",
            )
        if organizers != {recipient}:
            raise CallbackRejected(
                "The recipient header does not match the event's ORGANIZER; a REPLY goes to "
                "the organizer.",
                code="recipient",
            )


def _iso(value: dt.date | dt.datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if timezone.is_aware(value) else value.replace(tzinfo=dt.UTC)


def _booking_answer_apply(itip: ITipMessage, *, sender: str, message_id: int) -> None:
    """A REPLY about one of our bookings records the attendee's answer (docs/design.md 1.3)."""
    booking_id = Booking.objects.filter(ical_uid=itip.uid).values_list("pk", flat=True).first()
    if booking_id is None:
        return
    attendee = itip.primary.attendee(sender)
    if attendee is None or not attendee.partstat:
        return
    try:
        recorded = booking_attendee_answer_record(
            booking_id=booking_id,
            attendee_email=sender,
            partstat=str(attendee.partstat),
            source=TransitionSource.CALDAV_REPLY,
        )
    except ValueError:
        logger.info(
            "booking answer not applied booking=%s message=%s reason=unknown-partstat",
            booking_id,
            message_id,
        )
        return
    logger.info(
        "booking answer from a caldav reply booking=%s message=%s recorded=%s",
        booking_id,
        message_id,
        recorded,
    )


def _answer_of(itip: ITipMessage, sender: str) -> str:
    """The PARTSTATs a REPLY carries for its sender, per occurrence, as one text."""
    answers = []
    for event in itip.events:
        entry = event.attendee(sender)
        if entry is not None:
            answers.append(f"{_iso(event.recurrence_id)}={entry.partstat}")
    return ";".join(sorted(answers))


def _fields(model: type[Delivery] | type[SchedulingMessage]) -> list[Field[Any, Any]]:
    """The columns an INSERT of ``model`` writes: every concrete field but the id."""
    return [field for field in model._meta.local_concrete_fields if not field.primary_key]


@functools.cache
def _store_sql(vendor: str) -> str:
    """The one statement that stores a delivery and its message on PostgreSQL (built once
    per process: composing it with Django's insert compiler cost more than the statement's
    round trip). Parameters: the delivery's fields, then the message's but its delivery."""
    database = connections[DEFAULT_DB_ALIAS]
    assert database.vendor == vendor
    quote = database.ops.quote_name

    def insert(model: type[Delivery] | type[SchedulingMessage], values: list[str]) -> str:
        # Only quoted names and placeholders are formatted in; values are parameters.
        columns = ", ".join(quote(str(field.column)) for field in _fields(model))
        table = quote(model._meta.db_table)
        return f"INSERT INTO {table} ({columns}) VALUES ({', '.join(values)})"  # noqa: S608

    message_values = [
        "(SELECT id FROM new_delivery)" if field.name == "delivery" else "%s"
        for field in _fields(SchedulingMessage)
    ]
    return (
        f"WITH new_delivery AS ({insert(Delivery, ['%s'] * len(_fields(Delivery)))} "
        f"RETURNING {quote('id')}) "
        f"{insert(SchedulingMessage, message_values)} "
        f"RETURNING {quote('id')}, {quote('delivery_id')}"
    )


@functools.cache
def _parameter_fields(
    model: type[Delivery] | type[SchedulingMessage],
) -> tuple[Field[Any, Any], ...]:
    """The fields whose values are the statement's parameters: :func:`_fields` but a
    message's delivery (the statement takes it from the CTE). Kept per process."""
    return tuple(
        field
        for field in _fields(model)
        if not (model is SchedulingMessage and field.name == "delivery")
    )


def _values(row: Delivery | SchedulingMessage, database: BaseDatabaseWrapper) -> list[Any]:
    """``row``'s values as the ORM's INSERT prepares them (``auto_now`` fields set on
    ``row``), in :func:`_fields` order; a message's delivery is left out."""
    return [
        field.get_db_prep_save(field.pre_save(row, True), database)
        for field in _parameter_fields(type(row))
    ]


def _store_cursor(database: BaseDatabaseWrapper) -> CursorWrapper:
    """The store's cursor: one keeping its statement prepared on PostgreSQL unless
    ``DB_PREPARED_STATEMENTS`` is off (:mod:`scheduling.cursors`)."""
    if settings.DATABASE_PREPARED_STATEMENTS:
        return prepared_cursor(database=database)
    return database.cursor()


def _execute_reconnecting(
    database: BaseDatabaseWrapper, sql: str, params: list[Any]
) -> tuple[int, int]:
    """Run the store's one statement in autocommit and return its row, once more on a new
    connection when the kept one is dead (the server restarted, a proxy dropped it).

    The statement is its own health check: Django's (``CONN_HEALTH_CHECKS``) would cost a
    ``SELECT 1`` round trip and a commit before it on every callback, as many commits as
    the store itself. Sending it again is safe: a first attempt that did commit before the
    connection died makes the second find its ``dedupe_key`` taken (``IntegrityError``: the
    stored message is returned).
    """
    # Django's attribute (django/db/backends/base/base.py): this request's check is done.
    database.health_check_done = True  # type: ignore[attr-defined]
    try:
        with _store_cursor(database) as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    except (OperationalError, InterfaceError):
        if database.is_usable():
            raise
        logger.warning("scheduling message store: database connection lost, reconnecting")
        database.close()
        with _store_cursor(database) as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
    return int(row[0]), int(row[1])


def _store(delivery: Delivery, message: SchedulingMessage) -> None:
    """Insert the delivery and its message, both or neither, and nudge a worker after the
    commit. Raises ``IntegrityError`` when the message's ``dedupe_key`` is taken.

    On PostgreSQL it is one statement (the delivery's INSERT in a CTE, the message's taking
    its id): one round trip and, outside a transaction, one commit, where the ORM's two
    saves in ``transaction.atomic()`` took BEGIN, two INSERTs and COMMIT (four round trips)
    and Django's health check a SELECT 1 before them (bench/engine_cpu.py: web CPU per
    callback without the parse 2.9 -> 1.6 ms, PostgreSQL 0.86 -> 0.57 ms, commits 2 -> 1). A
    statement is atomic, so both rows commit or neither does, and a taken ``dedupe_key``
    leaves no delivery behind. Inside a caller's transaction it runs in a savepoint, so that
    a duplicate does not end the caller's transaction. Elsewhere (SQLite): the two saves in
    one transaction.
    """
    database = connections[DEFAULT_DB_ALIAS]
    if database.vendor != "postgresql":
        with transaction.atomic():
            delivery.save(force_insert=True)
            message.delivery = delivery
            message.save(force_insert=True)
        deliveries_nudge_on_commit()
        return
    sql = _store_sql(database.vendor)
    params = [*_values(delivery, database), *_values(message, database)]
    if database.in_atomic_block:
        with transaction.atomic(), _store_cursor(database) as cursor:
            cursor.execute(sql, params)
            message_pk, delivery_pk = cursor.fetchone()
    else:
        message_pk, delivery_pk = _execute_reconnecting(database, sql, params)
    for row, pk in ((delivery, delivery_pk), (message, message_pk)):
        row.pk = pk
        row._state.adding = False
        row._state.db = database.alias
    message.delivery = delivery
    deliveries_nudge_on_commit()


def scheduling_message_receive(
    *,
    body: bytes,
    method: Method,
    sender: str,
    recipient: str,
    is_mailbox: bool,
    org_id: str = "",
) -> ReceiveResult:
    """Check, store and schedule the delivery of one iTIP message for one recipient.

    ``sender`` and ``recipient`` are bare lower-cased addresses. Raises
    :class:`CallbackRejected` for a message that breaks the rules (nothing is stored) and
    :class:`CallbackStoreFailed` when the database cannot store it.
    """
    itip = _itip_parse(body)
    _itip_check(itip, method=method, sender=sender, recipient=recipient)
    primary = itip.primary
    body_sha256 = hashlib.sha256(body).hexdigest()
    dtstamp = _aware(primary.dtstamp)
    dedupe_key = dedupe_key_compute(
        method=method,
        sender=sender,
        recipient=recipient,
        uid=primary.uid,
        recurrence_id=_iso(primary.recurrence_id),
        sequence=primary.sequence,
        dtstamp=_iso(dtstamp),
        body_sha256=body_sha256,
        answer=_answer_of(itip, sender) if method == Method.REPLY else "",
    )
    # What the worker renders from: this parse, kept, so that no attempt parses the body again.
    prepared = prepared_dump(itip, method=method)
    # The delivery carries the body: it is stored once, in the outbox.
    delivery = delivery_new(
        kind=DeliveryKind.ITIP,
        sender=sender,
        recipient=recipient,
        mailbox=is_mailbox,
        itip=ItipContent(
            method=method,
            body=body,
            uid=primary.uid,
            recurrence_id=_iso(primary.recurrence_id),
            sequence=primary.sequence,
            dtstamp=dtstamp,
            prepared=prepared,
        ),
    )
    message = SchedulingMessage(
        body_sha256=body_sha256,
        method=method,
        sender=sender,
        recipient=recipient,
        uid=primary.uid,
        recurrence_id=_iso(primary.recurrence_id),
        sequence=primary.sequence,
        dtstamp=dtstamp,
        is_mailbox=is_mailbox,
        org_id=org_id,
        dedupe_key=dedupe_key,
    )
    try:
        if method == Method.REPLY:
            # The booking's answer commits with the message, or neither does.
            with transaction.atomic():
                _store(delivery, message)
                _booking_answer_apply(itip, sender=sender, message_id=message.pk)
        else:
            _store(delivery, message)
    except IntegrityError as exc:
        existing = (
            SchedulingMessage.objects.filter(dedupe_key=dedupe_key)
            .select_related("delivery")
            .defer("delivery__body")
            .first()
        )
        if existing is None:
            logger.error("scheduling message not stored: integrity error without a duplicate")
            raise CallbackStoreFailed("integrity error") from exc
        logger.info(
            "scheduling message duplicate message=%s method=%s", existing.pk, existing.method
        )
        return ReceiveResult(message=existing, delivery=existing.delivery, created=False)
    except DatabaseError as exc:
        logger.error("scheduling message not stored: database error %s", type(exc).__name__)
        raise CallbackStoreFailed("database error") from exc
    logger.debug(
        "scheduling message accepted message=%s method=%s delivery=%s transport=%s",
        message.pk,
        method,
        delivery.pk,
        delivery.transport,
    )
    counter_increment("convoke_callbacks_accepted", method=str(method))
    return ReceiveResult(message=message, delivery=delivery, created=True)


# --- Refused callbacks: counted for /metrics and for the admin's "last hour", no row written ----


def callback_refusal_record(*, reason: str) -> None:
    """Count a refused callback by reason code (never the key, never an address).

    Refusals come from anyone, authenticated or not, so counting one writes nothing to the
    database (docs/design.md 1.5): the total goes to the ``/metrics`` counter (per-process files),
    the minute to the shared cache for the admin's "refused in the last hour". Like the
    metrics, this never breaks the refusal it records.
    """
    counter_increment("convoke_callbacks_refused", reason=reason)
    recent_count_add(REFUSALS_RECENT, reason)
