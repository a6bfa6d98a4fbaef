"""Native answers: a mail client's iTIP REPLY, received through Brevo's inbound webhook.

The REPLY is real captured data (``nextcloud-calendar__reply.ics`` from the shared corpus,
attendee b@example.com answering organizer a@example.com), carried in a real RFC 6047 email
that Brevo's inbound parsing would post; django-anymail's Brevo webhook downloads the
attachment from a fake Brevo API on 127.0.0.1, and the answer lands on Radicale.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from calendars.ical import parse_itip
from calendars.models import BookingStatus, BookingTransition, TransitionSource
from invitations.models import (
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    DeliveryTransport,
    InboundReply,
    InboundReplyStatus,
)
from tests.factories import BookingFactory
from tests.fakes.brevo_inbound import FakeBrevoApi
from tests.hostile import HOSTILE_DIR
from tests.invitations.rsvp_support import (
    Account,
    DavProxy,
    RadicaleAccounts,
    event_body,
    partstats,
    point_convoke_at,
)

pytestmark = pytest.mark.django_db

URL = "/webhooks/brevo/inbound/"
SECRET = "brevo:inbound-secret-3f9a7c1e"
CORPUS_REPLY = "nextcloud-calendar__reply.ics"
ORGANIZER = "a@example.com"
ATTENDEE = "b@example.com"


@pytest.fixture(scope="session")
def corpus_organizer(radicale_accounts: RadicaleAccounts) -> Account:
    """The organizer of the corpus REPLY, a@example.com, with a calendar on Radicale."""
    account = radicale_accounts.account_new(email=ORGANIZER)
    account.calendar_create("Work")
    return account


@pytest.fixture
def corpus_reply(corpus_dir: Path) -> bytes:
    return (corpus_dir / "ics" / CORPUS_REPLY).read_bytes()


def invitation_delivered(*, uid: str, attendee: str, sequence: int = 0) -> Delivery:
    """An invitation to ``uid`` that Convoke sent to ``attendee`` (what makes a REPLY from
    that address believable, invitations.inbound_trust)."""
    return Delivery.objects.create(
        kind=DeliveryKind.ITIP,
        sender=ORGANIZER,
        recipient=attendee,
        method="REQUEST",
        body=b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
        uid=uid,
        sequence=sequence,
        transport=DeliveryTransport.SMTP,
        status=DeliveryStatus.SENT,
        message_id_header=f"<{uuid.uuid4().hex}@convoke.test>",
    )


@pytest.fixture
def stored_event(corpus_organizer: Account, corpus_reply: bytes, settings: Any) -> Any:
    """The organizer's copy of the event the corpus REPLY answers, and the invitation Convoke
    delivered to the attendee; removed afterwards."""
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    point_convoke_at(settings, corpus_organizer)
    uid = parse_itip(corpus_reply).uid
    invitation_delivered(uid=uid, attendee=ATTENDEE)
    corpus_organizer.event_create(
        event_body(
            uid=uid,
            organizer=ORGANIZER,
            attendees=[(ATTENDEE, "NEEDS-ACTION"), ("c@example.com", "NEEDS-ACTION")],
        )
    )
    yield uid
    corpus_organizer.delete(uid)


def reply_email(calendar: bytes, *, sender: str = ATTENDEE, inline: bool = False) -> EmailMessage:
    """The email a client sends for a REPLY (RFC 6047 section 2.4)."""
    message = EmailMessage()
    message["From"] = f"Bea Example <{sender}>"
    message["To"] = f"Anna Organizer <{ORGANIZER}>"
    message["Subject"] = "Accepted: Quarterly planning"
    message["Message-ID"] = f"<{uuid.uuid4().hex}@mail.example.com>"
    message.set_content("Bea Example has accepted this invitation.")
    text = calendar.decode("utf-8")
    if inline:
        message.add_alternative(text, subtype="calendar", params={"method": "REPLY"})
    else:
        message.add_attachment(
            text, subtype="calendar", params={"method": "REPLY"}, filename="reply.ics"
        )
    return message


def post_inbound(
    client: Client,
    payload: dict[str, Any] | bytes,
    *,
    secret: str | None = SECRET,
    capture: Any = None,
) -> Any:
    headers = {}
    if secret is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(secret.encode()).decode()
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if capture is None:
        return client.post(URL, data=body, content_type="application/json", headers=headers)
    with capture(execute=True):
        return client.post(URL, data=body, content_type="application/json", headers=headers)


def test_partstat_is_set_on_the_server_when_the_reply_has_a_valid_signature(
    client: Client,
    brevo_api: FakeBrevoApi,
    corpus_organizer: Account,
    corpus_reply: bytes,
    stored_event: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    payload = brevo_api.payload(reply_email(corpus_reply))

    response = post_inbound(client, payload, capture=django_capture_on_commit_callbacks)

    assert response.status_code == 200
    assert len(brevo_api.downloads) == 1
    reply = InboundReply.objects.get()
    assert (reply.attendee, reply.organizer, reply.uid) == (ATTENDEE, ORGANIZER, stored_event)
    assert reply.status == InboundReplyStatus.APPLIED
    assert partstats(corpus_organizer.stored(stored_event)[1])[None] == {
        ATTENDEE: "ACCEPTED",
        "c@example.com": "NEEDS-ACTION",
    }
    # The organizer has the client's own email: Convoke sends none.
    assert Delivery.objects.filter(method="REPLY").count() == 0


def test_reply_is_applied_when_it_is_inline_in_the_alternative_part(
    client: Client,
    brevo_api: FakeBrevoApi,
    corpus_organizer: Account,
    corpus_reply: bytes,
    stored_event: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    declined = corpus_reply.replace(b"PARTSTAT=ACCEPTED", b"PARTSTAT=DECLINED")
    payload = brevo_api.payload(reply_email(declined, inline=True))

    post_inbound(client, payload, capture=django_capture_on_commit_callbacks)

    assert partstats(corpus_organizer.stored(stored_event)[1])[None][ATTENDEE] == "DECLINED"


@pytest.mark.parametrize(
    "secret", ["brevo:wrong-secret", "", None, SECRET + "x", "Brevo:inbound-secret-3f9a7c1e"]
)
def test_webhook_gets_400_and_changes_nothing_when_the_signature_is_invalid(
    client: Client,
    brevo_api: FakeBrevoApi,
    corpus_organizer: Account,
    corpus_reply: bytes,
    stored_event: str,
    secret: str | None,
) -> None:
    etag = corpus_organizer.stored(stored_event)[0]
    payload = brevo_api.payload(reply_email(corpus_reply))

    response = post_inbound(client, payload, secret=secret)

    assert response.status_code == 400
    assert brevo_api.downloads == []
    assert InboundReply.objects.count() == 0
    assert corpus_organizer.stored(stored_event)[0] == etag


def test_webhook_refuses_everything_when_no_secret_is_configured(
    client: Client, brevo_api: FakeBrevoApi, corpus_reply: bytes, settings: Any
) -> None:
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": ""}

    response = post_inbound(client, brevo_api.payload(reply_email(corpus_reply)), secret=None)

    assert response.status_code == 400
    assert InboundReply.objects.count() == 0


def test_reply_is_ignored_when_from_is_not_the_replying_attendee(
    client: Client,
    brevo_api: FakeBrevoApi,
    corpus_organizer: Account,
    corpus_reply: bytes,
    stored_event: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    etag = corpus_organizer.stored(stored_event)[0]

    with caplog.at_level(logging.INFO, logger="invitations.inbound"):
        for sender in ("mallory@example.com", "bb@example.com", "b@example.co"):
            payload = brevo_api.payload(reply_email(corpus_reply, sender=sender))
            assert post_inbound(client, payload).status_code == 200

    assert InboundReply.objects.count() == 0
    assert corpus_organizer.stored(stored_event)[0] == etag
    assert caplog.text.count("reason=from-is-not-the-replying-attendee") == 3
    assert "mallory" not in caplog.text


def test_mail_is_ignored_with_a_log_line_when_it_is_not_a_reply(
    client: Client,
    brevo_api: FakeBrevoApi,
    corpus_dir: Path,
    caplog: pytest.LogCaptureFixture,
    settings: Any,
) -> None:
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    request = (corpus_dir / "ics" / "nextcloud-calendar__request.ics").read_bytes()
    plain = EmailMessage()
    plain["From"] = ATTENDEE
    plain["To"] = ORGANIZER
    plain["Subject"] = "Lunch?"
    plain.set_content("No calendar here.")

    with caplog.at_level(logging.INFO, logger="invitations.inbound"):
        invitation = brevo_api.payload(reply_email(request))
        assert post_inbound(client, invitation).status_code == 200
        assert post_inbound(client, brevo_api.payload(plain)).status_code == 200
        garbage = brevo_api.payload(reply_email(b"BEGIN:VCALENDAR\r\nnot iCalendar"))
        assert post_inbound(client, garbage).status_code == 200

    assert InboundReply.objects.count() == 0
    assert "inbound mail ignored reason=not-a-reply method=REQUEST" in caplog.text
    assert "inbound mail ignored reason=no-calendar-part" in caplog.text
    assert "inbound mail ignored reason=calendar-part-unreadable" in caplog.text


def test_reply_is_stored_and_applied_once_when_the_webhook_is_replayed(
    client: Client,
    brevo_api: FakeBrevoApi,
    corpus_organizer: Account,
    corpus_reply: bytes,
    stored_event: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    payload = brevo_api.payload(reply_email(corpus_reply))

    for _ in range(3):
        response = post_inbound(client, payload, capture=django_capture_on_commit_callbacks)
        assert response.status_code == 200

    assert InboundReply.objects.count() == 1
    assert partstats(corpus_organizer.stored(stored_event)[1])[None][ATTENDEE] == "ACCEPTED"


def test_reply_is_ignored_when_the_sender_is_not_on_the_servers_event(
    client: Client,
    brevo_api: FakeBrevoApi,
    corpus_organizer: Account,
    corpus_reply: bytes,
    stored_event: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # A consistent REPLY (From = its attendee), invited once, but no longer on the event.
    intruder = corpus_reply.replace(b"mailto:b@example.com", b"mailto:d@example.com")
    invitation_delivered(uid=stored_event, attendee="d@example.com")
    etag = corpus_organizer.stored(stored_event)[0]

    post_inbound(
        client,
        brevo_api.payload(reply_email(intruder, sender="d@example.com")),
        capture=django_capture_on_commit_callbacks,
    )

    reply = InboundReply.objects.get()
    assert reply.status == InboundReplyStatus.IGNORED
    assert reply.last_error == "not an attendee of the stored event"
    assert corpus_organizer.stored(stored_event)[0] == etag


def test_newer_answer_stays_when_an_older_reply_arrives_late(
    client: Client,
    brevo_api: FakeBrevoApi,
    corpus_organizer: Account,
    corpus_reply: bytes,
    stored_event: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    newer = corpus_reply.replace(b"PARTSTAT=ACCEPTED", b"PARTSTAT=DECLINED").replace(
        b"DTSTAMP:19970612T190000Z", b"DTSTAMP:19970612T193000Z"
    )
    for body in (newer, corpus_reply):  # the 19:30 Decline arrives before the 19:00 Accept
        post_inbound(
            client,
            brevo_api.payload(reply_email(body)),
            capture=django_capture_on_commit_callbacks,
        )

    statuses = dict(InboundReply.objects.values_list("dtstamp__minute", "status"))
    assert statuses == {30: InboundReplyStatus.APPLIED, 0: InboundReplyStatus.IGNORED}
    assert partstats(corpus_organizer.stored(stored_event)[1])[None][ATTENDEE] == "DECLINED"


def test_booking_gets_the_answer_as_caldav_reply_when_the_event_is_a_booking(
    client: Client,
    brevo_api: FakeBrevoApi,
    corpus_organizer: Account,
    corpus_reply: bytes,
    stored_event: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    booking = BookingFactory(ical_uid=stored_event, attendee_email=ATTENDEE)

    post_inbound(
        client,
        brevo_api.payload(reply_email(corpus_reply)),
        capture=django_capture_on_commit_callbacks,
    )

    booking.refresh_from_db()
    assert booking.attendee_partstat == "ACCEPTED"
    transition = BookingTransition.objects.filter(booking=booking).latest("id")
    assert transition.source == TransitionSource.CALDAV_REPLY


def test_reply_stays_stored_and_is_marked_failed_when_caldav_stays_down(
    client: Client,
    brevo_api: FakeBrevoApi,
    corpus_organizer: Account,
    corpus_reply: bytes,
    stored_event: str,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    proxy = DavProxy(upstream=corpus_organizer.server_url, unavailable=True)
    proxy.start()
    try:
        point_convoke_at(settings, corpus_organizer, url=proxy.url)
        response = post_inbound(
            client,
            brevo_api.payload(reply_email(corpus_reply)),
            capture=django_capture_on_commit_callbacks,
        )
    finally:
        proxy.stop()

    assert response.status_code == 200
    reply = InboundReply.objects.get()
    # Tasks run eagerly here, so every retry ran at once; a worker spreads them over a day.
    assert reply.status == InboundReplyStatus.FAILED
    assert reply.attempts > 1
    assert partstats(corpus_organizer.stored(stored_event)[1])[None][ATTENDEE] == "NEEDS-ACTION"


def test_webhook_asks_brevo_to_retry_when_the_attachment_cannot_be_fetched(
    client: Client, brevo_api: FakeBrevoApi, corpus_reply: bytes, stored_event: str
) -> None:
    payload = brevo_api.payload(reply_email(corpus_reply))
    brevo_api.down = True

    response = post_inbound(client, payload)

    assert response.status_code == 429
    assert InboundReply.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"items": "nope"}',
        b'{"items": [{"Headers": 5}]}',
        b'{"event": "delivered"}',
        b"\xff\xfe\x00",
    ],
)
def test_webhook_gets_400_when_the_payload_is_malformed(
    client: Client, brevo_api: FakeBrevoApi, body: bytes, settings: Any
) -> None:
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}

    response = post_inbound(client, body)

    assert response.status_code == 400
    assert InboundReply.objects.count() == 0


def test_webhook_gets_400_when_the_payload_is_oversized(client: Client, settings: Any) -> None:
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}

    response = post_inbound(client, b'{"items": [' + b" " * (3 * 1024 * 1024) + b"]}")

    assert response.status_code == 400
    assert InboundReply.objects.count() == 0


def test_sweep_applies_a_stored_reply_when_its_first_enqueue_was_lost(
    client: Client,
    brevo_api: FakeBrevoApi,
    corpus_organizer: Account,
    corpus_reply: bytes,
    stored_event: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from invitations.inbound import inbound_replies_sweep

    payload = brevo_api.payload(reply_email(corpus_reply))
    # The webhook stores the reply, but the task enqueued after the commit never runs.
    with django_capture_on_commit_callbacks(execute=False):
        assert post_inbound(client, payload).status_code == 200
    reply = InboundReply.objects.get()
    assert reply.status == InboundReplyStatus.PENDING

    assert inbound_replies_sweep() == []  # too early: the task may still be on its way
    later = timezone.now() + timedelta(minutes=11)
    assert inbound_replies_sweep(now=later) == [reply.pk]  # eager in tests: applied at once

    reply.refresh_from_db()
    assert reply.status == InboundReplyStatus.APPLIED
    assert partstats(corpus_organizer.stored(stored_event)[1])[None][ATTENDEE] == "ACCEPTED"
    assert inbound_replies_sweep(now=later + timedelta(minutes=11)) == []


# --- Trust (issue 11, finding 7): a From header proves nothing by itself ----------------------


def test_forged_reply_changes_nothing_when_convoke_never_invited_that_address(
    client: Client,
    brevo_api: FakeBrevoApi,
    corpus_organizer: Account,
    corpus_reply: bytes,
    stored_event: str,
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # c@example.com is an attendee on the server but Convoke never sent them the invitation:
    # anyone can write "From: c@example.com".
    forged = corpus_reply.replace(b"mailto:b@example.com", b"mailto:c@example.com")
    etag = corpus_organizer.stored(stored_event)[0]

    with caplog.at_level(logging.INFO, logger="invitations.inbound"):
        response = post_inbound(
            client,
            brevo_api.payload(reply_email(forged, sender="c@example.com")),
            capture=django_capture_on_commit_callbacks,
        )

    assert response.status_code == 200
    reply = InboundReply.objects.get()
    assert reply.status == InboundReplyStatus.REFUSED
    assert reply.last_error == "Convoke delivered no invitation to this event to this address"
    assert corpus_organizer.stored(stored_event)[0] == etag
    assert "inbound reply refused" in caplog.text
    assert "c@example.com" not in caplog.text


def test_forged_decline_leaves_the_booking_alone_when_from_is_not_the_bookee(
    client: Client,
    brevo_api: FakeBrevoApi,
    corpus_organizer: Account,
    corpus_reply: bytes,
    stored_event: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    booking = BookingFactory(ical_uid=stored_event, attendee_email="bookee@example.com")
    forged = corpus_reply.replace(b"PARTSTAT=ACCEPTED", b"PARTSTAT=DECLINED").replace(
        b"mailto:b@example.com", b"mailto:c@example.com"
    )

    post_inbound(
        client,
        brevo_api.payload(reply_email(forged, sender="c@example.com")),
        capture=django_capture_on_commit_callbacks,
    )

    booking.refresh_from_db()
    assert booking.status == BookingStatus.REQUESTED
    assert InboundReply.objects.get().status == InboundReplyStatus.REFUSED


def test_bookee_reply_is_applied_when_the_booking_names_that_address(
    client: Client,
    brevo_api: FakeBrevoApi,
    corpus_organizer: Account,
    corpus_reply: bytes,
    stored_event: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    Delivery.objects.all().delete()  # no invitation email: Google invited the bookee
    booking = BookingFactory(ical_uid=stored_event, attendee_email=ATTENDEE)

    post_inbound(
        client,
        brevo_api.payload(reply_email(corpus_reply)),
        capture=django_capture_on_commit_callbacks,
    )

    assert InboundReply.objects.get().status == InboundReplyStatus.APPLIED
    booking.refresh_from_db()
    assert booking.attendee_partstat == "ACCEPTED"


@pytest.mark.parametrize(
    ("verdict", "refused"),
    [
        ("spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com; dmarc=fail", True),
        ("spf=fail smtp.mailfrom=example.com; dkim=none", True),
        ("spf=fail smtp.mailfrom=example.com; dkim=fail; dkim=pass header.d=example.com", False),
        ("spf=pass smtp.mailfrom=example.com; dmarc=pass header.from=example.com", False),
    ],
)
def test_provider_verdict_is_followed_when_the_payload_carries_one(
    client: Client,
    brevo_api: FakeBrevoApi,
    corpus_organizer: Account,
    corpus_reply: bytes,
    stored_event: str,
    django_capture_on_commit_callbacks: Any,
    verdict: str,
    refused: bool,
) -> None:
    email = reply_email(corpus_reply)
    email["Authentication-Results"] = f"mx.inbound.example; {verdict}"

    post_inbound(client, brevo_api.payload(email), capture=django_capture_on_commit_callbacks)

    reply = InboundReply.objects.get()
    assert (reply.status == InboundReplyStatus.REFUSED) is refused, reply.last_error
    answer = partstats(corpus_organizer.stored(stored_event)[1])[None][ATTENDEE]
    assert answer == ("NEEDS-ACTION" if refused else "ACCEPTED")


def test_reply_to_an_older_version_is_refused_when_a_newer_invitation_was_delivered(
    client: Client,
    brevo_api: FakeBrevoApi,
    corpus_organizer: Account,
    corpus_reply: bytes,
    stored_event: str,
    django_capture_on_commit_callbacks: Any,
) -> None:
    invitation_delivered(uid=stored_event, attendee=ATTENDEE, sequence=2)

    post_inbound(
        client,
        brevo_api.payload(reply_email(corpus_reply)),  # SEQUENCE:0
        capture=django_capture_on_commit_callbacks,
    )

    reply = InboundReply.objects.get()
    assert reply.status == InboundReplyStatus.REFUSED
    assert "SEQUENCE 0" in reply.last_error
    assert partstats(corpus_organizer.stored(stored_event)[1])[None][ATTENDEE] == "NEEDS-ACTION"


def test_webhook_answers_at_once_and_stores_nothing_when_the_reply_has_a_hostile_zone(
    client: Client, brevo_api: FakeBrevoApi, settings: Any
) -> None:
    # Issue 11, finding 1: the inbound webhook reads bodies like the callback does.
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    hostile = (
        (HOSTILE_DIR / "zone-secondly-dtstart.ics")
        .read_bytes()
        .replace(b"METHOD:REQUEST", b"METHOD:REPLY")
    )

    started = time.monotonic()
    response = post_inbound(
        client, brevo_api.payload(reply_email(hostile, sender="bob@example.net"))
    )

    assert response.status_code == 200
    assert time.monotonic() - started < 5.0
    assert InboundReply.objects.count() == 0
