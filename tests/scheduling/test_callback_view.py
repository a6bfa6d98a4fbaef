"""``POST /api/v1.0/caldav-scheduling-callback/`` through Django's test client
(docs/design.md 1.1)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client

from calendars.ical import Method
from invitations.models import Delivery, DeliveryTransport
from scheduling.models import SchedulingMessage
from scheduling.services import scheduling_message_receive
from tests.scheduling.itip import (
    ATTENDEE,
    CALLBACK_URL,
    ORGANIZER,
    callback_headers,
    itip_body,
    post_callback,
)
from tests.settings import TEST_INBOUND_API_KEY

pytestmark = pytest.mark.django_db

WRONG_KEY = "wrong-key-7b3e9a1c5d2f4e6a8b0c1d3e5f7a9b2c"


def _text(response: Any) -> str:
    return response.content.decode("utf-8")


def _assert_refused(response: Any, status: int, *fragments: str) -> None:
    assert response.status_code == status, _text(response)
    assert response["Content-Type"].startswith("text/plain")
    for fragment in fragments:
        assert fragment in _text(response)
    assert SchedulingMessage.objects.count() == 0
    assert Delivery.objects.count() == 0


# --- accepted -------------------------------------------------------------------------------------


def test_callback_stores_message_and_delivery_when_request_is_valid(client: Client) -> None:
    body = itip_body(sequence=2)

    response = post_callback(client, body)

    assert response.status_code == 202, _text(response)
    message = SchedulingMessage.objects.get()
    assert bytes(message.body) == body
    assert (message.method, message.sender, message.recipient) == ("REQUEST", ORGANIZER, ATTENDEE)
    assert message.uid == "event-0001@dav.example.org"
    assert message.sequence == 2
    assert message.dtstamp is not None
    assert message.dtstamp.isoformat() == "2026-11-20T09:00:00+00:00"
    assert message.recurrence_id == ""
    assert message.is_mailbox is False
    delivery = Delivery.objects.get()
    assert message.delivery == delivery
    assert delivery.recipient == ATTENDEE
    assert delivery.transport == DeliveryTransport.FILE  # the test settings' mail route
    assert delivery.message_id_header.startswith("<") and delivery.message_id_header.endswith(">")


def test_callback_chooses_messages_transport_when_is_mailbox_is_true(client: Client) -> None:
    response = post_callback(client, itip_body(), is_mailbox="true")

    assert response.status_code == 202
    assert SchedulingMessage.objects.get().is_mailbox is True
    assert Delivery.objects.get().transport == DeliveryTransport.MESSAGES


@pytest.mark.parametrize("value", ["false", "yes", "1", "", None])
def test_callback_chooses_mailer_when_is_mailbox_is_not_true(
    client: Client, value: str | None
) -> None:
    response = post_callback(client, itip_body(), is_mailbox=value)

    assert response.status_code == 202
    assert Delivery.objects.get().transport == DeliveryTransport.FILE


def test_callback_accepts_older_header_names_when_server_is_older(client: Client) -> None:
    response = post_callback(client, itip_body(), legacy=True)

    assert response.status_code == 202, _text(response)
    assert SchedulingMessage.objects.get().sender == ORGANIZER


def test_callback_accepts_addresses_without_mailto_or_in_any_case(client: Client) -> None:
    headers = callback_headers()
    headers["X-LS-Sender"] = "Alice@Example.ORG"
    headers["X-LS-Recipient"] = "MAILTO:Bob@EXAMPLE.net"

    response = post_callback(client, itip_body(), headers=headers)

    assert response.status_code == 202, _text(response)
    message = SchedulingMessage.objects.get()
    assert (message.sender, message.recipient) == (ORGANIZER, ATTENDEE)


def test_callback_accepts_folded_mailto_when_address_is_long(client: Client) -> None:
    attendee = "a.very.long.local.part.for.folding.in.the.middle@departement.example.org"
    body = itip_body(attendees=[(attendee, "NEEDS-ACTION")])
    assert b"\r\n " in body  # the ATTENDEE line is folded inside the mailto value

    response = post_callback(client, body, recipient=attendee)

    assert response.status_code == 202, _text(response)


def test_callback_accepts_lf_line_ends_when_server_sends_them(client: Client) -> None:
    body = itip_body().replace(b"\r\n", b"\n")

    response = post_callback(client, body)

    assert response.status_code == 202, _text(response)


def test_callback_accepts_body_without_method_when_header_names_it(client: Client) -> None:
    response = post_callback(client, itip_body(method=None))

    assert response.status_code == 202, _text(response)


def test_callback_accepts_content_type_parameters(client: Client) -> None:
    response = post_callback(
        client, itip_body(), content_type="Text/Calendar; charset=utf-8; method=REQUEST"
    )

    assert response.status_code == 202, _text(response)


def test_callback_accepts_reply_when_attendee_answers_organizer(client: Client) -> None:
    body = itip_body(method="REPLY", attendees=[(ATTENDEE, "ACCEPTED")])

    response = post_callback(client, body, method="REPLY", sender=ATTENDEE, recipient=ORGANIZER)

    assert response.status_code == 202, _text(response)
    assert Delivery.objects.get().recipient == ORGANIZER


def test_callback_accepts_cancel_when_organizer_cancels(client: Client) -> None:
    response = post_callback(client, itip_body(method="CANCEL"), method="CANCEL")

    assert response.status_code == 202, _text(response)
    assert SchedulingMessage.objects.get().method == "CANCEL"


def test_callback_accepts_message_when_it_has_10000_attendees(client: Client) -> None:
    attendees = [(f"guest{n}@example.net", "NEEDS-ACTION") for n in range(10_000)]
    body = itip_body(attendees=attendees)

    response = post_callback(client, body, recipient="guest9999@example.net")

    assert response.status_code == 202, _text(response)
    assert Delivery.objects.get().recipient == "guest9999@example.net"


# --- duplicates -----------------------------------------------------------------------------------


def test_callback_stores_once_when_same_callback_arrives_twice(client: Client) -> None:
    body = itip_body()

    first = post_callback(client, body)
    second = post_callback(client, body)

    assert (first.status_code, second.status_code) == (202, 202)
    assert "already accepted" in _text(second)
    assert SchedulingMessage.objects.count() == 1
    assert Delivery.objects.count() == 1


def test_callback_stores_once_when_bytes_differ_but_itip_identity_is_the_same(
    client: Client,
) -> None:
    post_callback(client, itip_body())
    response = post_callback(client, itip_body(extra=["X-SABRE-NOTE:re-serialised"]))

    assert response.status_code == 202
    assert SchedulingMessage.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"dtstamp": "20261120T091500Z"},
        {"sequence": 1},
        {"recurrence_id": "20261215T140000"},
        {"uid": "event-0002@dav.example.org"},
    ],
)
def test_callback_stores_again_when_itip_identity_differs(
    client: Client, change: dict[str, Any]
) -> None:
    post_callback(client, itip_body())
    response = post_callback(client, itip_body(**change))

    assert response.status_code == 202
    assert SchedulingMessage.objects.count() == 2
    assert Delivery.objects.count() == 2


def test_callback_stores_per_recipient_when_same_message_goes_to_two_attendees(
    client: Client,
) -> None:
    body = itip_body(attendees=[(ATTENDEE, "NEEDS-ACTION"), ("carol@example.net", "NEEDS-ACTION")])

    post_callback(client, body)
    post_callback(client, body, recipient="carol@example.net")

    assert sorted(Delivery.objects.values_list("recipient", flat=True)) == [
        ATTENDEE,
        "carol@example.net",
    ]


def test_callback_stores_both_replies_when_two_attendees_answer_in_the_same_second(
    client: Client,
) -> None:
    carol = "carol@example.net"
    for attendee in (ATTENDEE, carol):
        body = itip_body(method="REPLY", attendees=[(attendee, "ACCEPTED")])
        response = post_callback(client, body, method="REPLY", sender=attendee, recipient=ORGANIZER)
        assert response.status_code == 202

    assert sorted(SchedulingMessage.objects.values_list("sender", flat=True)) == [ATTENDEE, carol]
    assert Delivery.objects.filter(recipient=ORGANIZER).count() == 2


def test_callback_stores_both_replies_when_one_attendee_changes_their_mind_in_the_same_second(
    client: Client,
) -> None:
    # Issue 13: sabre's DTSTAMP has whole seconds; an answer changed at once (accepted, then
    # declined, through the RSVP page) is a second answer the organizer must hear of.
    for partstat in ("ACCEPTED", "DECLINED", "DECLINED"):
        body = itip_body(method="REPLY", attendees=[(ATTENDEE, partstat)])
        response = post_callback(client, body, method="REPLY", sender=ATTENDEE, recipient=ORGANIZER)
        assert response.status_code == 202

    assert Delivery.objects.filter(recipient=ORGANIZER).count() == 2


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_callback_stores_once_when_copies_arrive_concurrently() -> None:
    body = itip_body()
    copies = 8
    barrier = threading.Barrier(copies)
    statuses: list[int] = []
    lock = threading.Lock()

    def post() -> None:
        try:
            barrier.wait(timeout=10)
            response = post_callback(Client(), body)
            with lock:
                statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [202] * copies
    assert SchedulingMessage.objects.count() == 1
    assert Delivery.objects.count() == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_callback_is_stored_when_the_server_closed_the_kept_connection() -> None:
    # The store skips Django's per-request health check (a SELECT 1 and a commit) and is
    # its own: a statement on a connection the server ended is sent again on a new one.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (old_pid,) = cursor.fetchone()
    with connections.create_connection("default").cursor() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [old_pid])
    sender, recipient = ORGANIZER, ATTENDEE

    result = scheduling_message_receive(
        body=itip_body(),
        method=Method.REQUEST,
        sender=sender,
        recipient=recipient,
        is_mailbox=False,
    )

    assert result.created
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != old_pid
    assert SchedulingMessage.objects.get().delivery_id == Delivery.objects.get().pk


# --- refused: method, key, size, content type -----------------------------------------------------


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "head", "options"])
def test_callback_answers_405_when_method_is_not_post(client: Client, method: str) -> None:
    response = getattr(client, method)(CALLBACK_URL, headers=callback_headers())

    assert response.status_code == 405
    assert response["Allow"] == "POST"


def _key_fragments(key: str) -> set[str]:
    return {key[i : i + 6] for i in range(len(key) - 5)}


@pytest.mark.parametrize(
    "headers",
    [
        callback_headers(key=WRONG_KEY),
        callback_headers(key=None),
        callback_headers(key=""),
        callback_headers(key=WRONG_KEY, legacy=True),
        callback_headers(key=TEST_INBOUND_API_KEY[:-1]),
        callback_headers(key=TEST_INBOUND_API_KEY + "x"),
        callback_headers(key="clé-non-ascii-¤"),
    ],
    ids=["wrong", "missing", "empty", "wrong-legacy", "prefix", "longer", "non-ascii"],
)
def test_callback_answers_401_and_logs_no_key_when_key_is_wrong(
    client: Client, caplog: pytest.LogCaptureFixture, headers: dict[str, str]
) -> None:
    caplog.set_level(logging.DEBUG)

    response = post_callback(client, itip_body(), headers=headers)

    _assert_refused(response, 401, "API key")
    logged = caplog.text
    assert logged  # the refusal itself is logged, without the keys
    for key in (TEST_INBOUND_API_KEY, WRONG_KEY):
        assert not [part for part in _key_fragments(key) if part in logged]


def test_callback_answers_401_when_no_key_is_configured(client: Client, settings: Any) -> None:
    settings.CALDAV_INBOUND_API_KEY = ""

    response = post_callback(client, itip_body(), headers=callback_headers(key=""))

    _assert_refused(response, 401)


def test_callback_accepts_legacy_key_header_when_key_is_right(client: Client) -> None:
    response = post_callback(client, itip_body(), headers=callback_headers(legacy=True))

    assert response.status_code == 202


def test_callback_answers_413_when_body_is_2_mib(client: Client) -> None:
    body = itip_body(extra=["X-PADDING:" + "x" * (2 * 1024 * 1024)])

    response = post_callback(client, body)

    _assert_refused(response, 413, "larger than 1048576 bytes")


def test_callback_answers_413_when_body_exceeds_configured_limit(
    client: Client, settings: Any
) -> None:
    settings.CALLBACK_MAX_BYTES = 200

    response = post_callback(client, itip_body())

    _assert_refused(response, 413, "200 bytes")


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "application/octet-stream", ""]
)
def test_callback_answers_415_when_content_type_is_not_calendar(
    client: Client, content_type: str
) -> None:
    response = post_callback(client, itip_body(), content_type=content_type)

    _assert_refused(response, 415, "text/calendar")


# --- refused: headers -----------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["X-LS-Sender", "X-LS-Recipient", "X-LS-Method"])
def test_callback_answers_400_naming_the_header_when_it_is_missing(
    client: Client, missing: str
) -> None:
    headers = callback_headers()
    del headers[missing]

    response = post_callback(client, itip_body(), headers=headers)

    _assert_refused(response, 400, missing, "missing")


@pytest.mark.parametrize("method", ["PUBLISH", "COUNTER", "REFRESH", "ADD", "BOGUS", ""])
def test_callback_answers_400_when_method_is_not_deliverable(client: Client, method: str) -> None:
    response = post_callback(client, itip_body(method=None), method=method)

    _assert_refused(response, 400, "X-LS-Method must be one of REQUEST, REPLY, CANCEL")


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-LS-Sender", "mailto:alice@example.org\r\nBcc: victim@example.net"),
        ("X-LS-Recipient", "mailto:bob@example.net\nX-Injected: 1"),
        ("X-LS-Method", "REQUEST\r\nX-Injected: 1"),
        ("X-LS-Is-Mailbox", "true\r\nX-Injected: 1"),
        ("X-LS-Org-Id", "org\r\n1"),
    ],
)
def test_callback_answers_400_when_header_value_holds_cr_or_lf(
    client: Client, header: str, value: str
) -> None:
    headers = callback_headers()
    headers[header] = value

    response = post_callback(client, itip_body(), headers=headers)

    _assert_refused(response, 400, header, "control characters")


@pytest.mark.parametrize(
    "value", ["mailto:", "not-an-address", "mailto:alice@", "@example.org", "a b@example.org"]
)
def test_callback_answers_400_when_sender_is_not_an_address(client: Client, value: str) -> None:
    headers = callback_headers()
    headers["X-LS-Sender"] = value

    response = post_callback(client, itip_body(), headers=headers)

    _assert_refused(response, 400, "X-LS-Sender")


# --- refused: body and iTIP rules -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"   \r\n", "empty"),
        ("BEGIN:VCALENDAR\r\nSUMMARY:caf\xe9\r\nEND:VCALENDAR\r\n".encode("latin-1"), "UTF-8"),
        (bytes(range(256)) * 8, "iCalendar"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64, "iCalendar"),
        (b"<html><body>hello</body></html>", "BEGIN:VCALENDAR"),
        (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n", "END:VCALENDAR"),
    ],
    ids=["blank", "latin-1", "binary", "png", "html", "truncated"],
)
def test_callback_answers_400_when_body_is_not_icalendar(
    client: Client, body: bytes, fragment: str
) -> None:
    response = post_callback(client, body)

    _assert_refused(response, 400, fragment)


def test_callback_answers_400_when_body_has_no_vevent(client: Client) -> None:
    body = itip_body().replace(b"VEVENT", b"VTODO")

    response = post_callback(client, body)

    _assert_refused(response, 400, "VEVENT")


def test_callback_answers_400_when_body_method_contradicts_header(client: Client) -> None:
    response = post_callback(client, itip_body(method="CANCEL"), method="REQUEST")

    _assert_refused(response, 400, "METHOD (CANCEL)", "(REQUEST)")


def test_callback_answers_400_when_sender_is_not_the_organizer(client: Client) -> None:
    response = post_callback(client, itip_body(), sender="mallory@example.org")

    _assert_refused(response, 400, "ORGANIZER")


def test_callback_answers_400_when_recipient_is_not_an_attendee(client: Client) -> None:
    response = post_callback(client, itip_body(), recipient="carol@example.net")

    _assert_refused(response, 400, "recipient", "not an ATTENDEE")


def test_callback_answers_400_when_reply_comes_from_a_non_attendee(client: Client) -> None:
    body = itip_body(method="REPLY", attendees=[(ATTENDEE, "ACCEPTED")])

    response = post_callback(
        client, body, method="REPLY", sender="mallory@example.net", recipient=ORGANIZER
    )

    _assert_refused(response, 400, "sender", "not an ATTENDEE")


def test_callback_answers_400_when_reply_goes_to_someone_else(client: Client) -> None:
    body = itip_body(method="REPLY", attendees=[(ATTENDEE, "ACCEPTED")])

    response = post_callback(
        client, body, method="REPLY", sender=ATTENDEE, recipient="carol@example.net"
    )

    _assert_refused(response, 400, "ORGANIZER")


def test_callback_answers_400_when_event_has_no_organizer(client: Client) -> None:
    response = post_callback(client, itip_body(organizer=None))

    _assert_refused(response, 400, "no ORGANIZER")


def test_callback_answers_400_when_event_has_no_uid(client: Client) -> None:
    body = itip_body().replace(b"UID:event-0001@dav.example.org\r\n", b"")

    response = post_callback(client, body)

    _assert_refused(response, 400, "UID")


def test_callback_answers_400_when_body_holds_two_events(client: Client) -> None:
    first = itip_body()
    second_event = itip_body(uid="event-0002@dav.example.org").split(b"BEGIN:VEVENT")[1]
    second_event = b"BEGIN:VEVENT" + second_event.split(b"END:VCALENDAR")[0]
    body = first.replace(b"END:VCALENDAR", second_event + b"END:VCALENDAR")

    response = post_callback(client, body)

    _assert_refused(response, 400, "2 different event UIDs")


# --- refused: storage -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_callback_answers_503_when_the_message_cannot_be_stored(client: Client) -> None:
    """Another transaction holds the table; the insert fails fast; nothing half-stored."""
    table = SchedulingMessage._meta.db_table
    locked = threading.Event()
    done = threading.Event()

    def hold_lock() -> None:
        other = connections.create_connection("default")
        try:
            with other.cursor() as cursor:
                if other.vendor == "postgresql":
                    cursor.execute("BEGIN")
                    cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
                else:
                    cursor.execute("BEGIN IMMEDIATE")
                    cursor.execute(f"DELETE FROM {table}")  # noqa: S608 (a model's table name)
                locked.set()
                done.wait(timeout=30)
                cursor.execute("ROLLBACK")
        finally:
            other.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert locked.wait(timeout=10)
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SET lock_timeout = '300ms'")
        response = post_callback(client, itip_body())
    finally:
        done.set()
        holder.join(timeout=30)
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")

    assert response.status_code == 503, _text(response)
    assert "could not be stored" in _text(response)
    assert SchedulingMessage.objects.count() == 0
