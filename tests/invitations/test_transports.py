"""Transports against real servers on 127.0.0.1: aiosmtpd, the fake Messages API, and a
minimal Brevo-shaped HTTP endpoint for the anymail route."""

from __future__ import annotations

import json
import smtplib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from django.core.mail import EmailMessage

from invitations.transports import PermanentSendError, TransientSendError
from invitations.transports.mailer import MailerTransport, classify_exception
from invitations.transports.messages_api import MessagesApiTransport
from tests.fakes.messages_api import SCOPE_MAILBOXES_READ, SCOPE_SEND, FakeMessagesApi
from tests.fakes.smtp import SmtpSink

ORGANIZER = "alice@example.org"
ATTENDEE = "bob@example.net"
MESSAGE_ID = "<0123456789abcdef@convoke.test>"


def _email(from_email: str = f"Alice <{ORGANIZER}>", **extra: Any) -> EmailMessage:
    return EmailMessage(
        subject="Invitation: Planning",
        body="You are invited.",
        from_email=from_email,
        to=[ATTENDEE],
        headers={"Message-ID": MESSAGE_ID},
        **extra,
    )


# --- SMTP through the Django mailer ---------------------------------------------------------------


def test_smtp_transport_delivers_when_server_accepts(smtp_sink: SmtpSink) -> None:
    MailerTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)

    assert len(smtp_sink.messages) == 1
    received = smtp_sink.messages[0]
    assert received.rcpt_tos == (ATTENDEE,)
    assert received.message_id == MESSAGE_ID


@pytest.mark.parametrize("code", [421, 451])
def test_smtp_transport_raises_transient_when_server_answers_4xx(
    smtp_sink: SmtpSink, code: int
) -> None:
    smtp_sink.refuse_next(1, code=code)

    with pytest.raises(TransientSendError, match=str(code)):
        MailerTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)
    assert smtp_sink.messages == []
    assert smtp_sink.attempts == [MESSAGE_ID]


def test_smtp_transport_raises_transient_when_connection_dropped(smtp_sink: SmtpSink) -> None:
    smtp_sink.drop_next(1)

    with pytest.raises(TransientSendError):
        MailerTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)
    assert smtp_sink.messages == []


def test_smtp_transport_raises_permanent_when_recipient_refused(smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse_recipients = {ATTENDEE}

    with pytest.raises(PermanentSendError) as caught:
        MailerTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)
    assert "550" in caught.value.reason
    assert ATTENDEE not in caught.value.reason


def test_smtp_transport_raises_permanent_when_data_refused_with_5xx(smtp_sink: SmtpSink) -> None:
    smtp_sink.refuse_next(1, code=554)

    with pytest.raises(PermanentSendError, match="554"):
        MailerTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)


def test_smtp_transport_raises_transient_when_server_unreachable(
    settings: Any, unused_port: int
) -> None:
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": unused_port, "timeout": 2},
        }
    }
    with pytest.raises(TransientSendError, match=r"reach|network"):
        MailerTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (smtplib.SMTPRecipientsRefused({ATTENDEE: (450, b"busy")}), TransientSendError),
        (smtplib.SMTPRecipientsRefused({ATTENDEE: (550, b"unknown")}), PermanentSendError),
        (smtplib.SMTPSenderRefused(553, b"no", ORGANIZER), PermanentSendError),
        (smtplib.SMTPDataError(452, b"full"), TransientSendError),
        (smtplib.SMTPAuthenticationError(535, b"bad credentials"), TransientSendError),
        (smtplib.SMTPServerDisconnected("gone"), TransientSendError),
        (TimeoutError("slow"), TransientSendError),
        (ConnectionRefusedError("refused"), TransientSendError),
        (ValueError("Invalid address"), PermanentSendError),
    ],
)
def test_classify_exception_sorts_transient_from_permanent_when_mailer_fails(
    exc: Exception, kind: type
) -> None:
    error = classify_exception(exc)

    assert isinstance(error, kind)
    assert ATTENDEE not in error.reason and ORGANIZER not in error.reason


# --- Brevo through anymail ------------------------------------------------------------------------


class _BrevoLike:
    """Answers anymail's Brevo backend: POST /v3/smtp/email, status on demand."""

    def __init__(self) -> None:
        self.status = 201
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fake.requests.append(
                    {
                        "path": self.path,
                        "key": self.headers.get("api-key"),
                        "json": json.loads(self.rfile.read(length)),
                    }
                )
                body = (
                    {"messageId": "<brevo-1@smtp-relay.mailin.fr>"}
                    if fake.status == 201
                    else {"code": "error", "message": "refused"}
                )
                payload = json.dumps(body).encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v3/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def brevo(settings: Any) -> Iterator[_BrevoLike]:
    fake = _BrevoLike()
    settings.MAILERS = {
        "default": {
            "BACKEND": "anymail.backends.brevo.EmailBackend",
            "OPTIONS": {"api_key": "brevo-test-key-1234567890", "api_url": fake.url},
        }
    }
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_brevo_transport_returns_provider_id_when_accepted(brevo: _BrevoLike) -> None:
    result = MailerTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)

    assert result.provider_message_id == "<brevo-1@smtp-relay.mailin.fr>"
    assert brevo.requests[0]["path"] == "/v3/smtp/email"
    assert brevo.requests[0]["json"]["headers"]["Message-ID"] == MESSAGE_ID


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, TransientSendError),
        (500, TransientSendError),
        (503, TransientSendError),
        (400, PermanentSendError),
        (401, PermanentSendError),
    ],
)
def test_brevo_transport_classifies_http_errors_when_refused(
    brevo: _BrevoLike, status: int, kind: type
) -> None:
    brevo.status = status

    with pytest.raises(kind, match=str(status)):
        MailerTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)


# --- La Suite Messages API ------------------------------------------------------------------------


def test_messages_transport_submits_raw_message_when_mailbox_matches(
    messages_api: FakeMessagesApi, settings: Any
) -> None:
    mailbox_id = messages_api.add_mailbox(ORGANIZER)

    result = MessagesApiTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)

    assert result.provider_message_id
    [submission] = messages_api.submissions
    assert submission.mailbox_id == mailbox_id
    assert submission.rcpt_to == (ATTENDEE,)
    assert submission.headers["X-Channel-Id"] == settings.MESSAGES_CHANNEL_ID
    assert submission.headers["Content-Type"] == "message/rfc822"
    assert submission.message["Message-ID"] == MESSAGE_ID
    assert submission.message["Subject"] == "Invitation: Planning"
    assert b"\r\n" in submission.raw


def test_messages_transport_looks_mailbox_up_once_when_sending_twice(
    messages_api: FakeMessagesApi,
) -> None:
    messages_api.add_mailbox(ORGANIZER)
    transport = MessagesApiTransport()

    transport.send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)
    MessagesApiTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)

    assert len(messages_api.submissions) == 2
    assert messages_api.state.lookups == 1


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, PermanentSendError),
        (401, PermanentSendError),
        (403, PermanentSendError),
        (404, PermanentSendError),
        (429, TransientSendError),
        (500, TransientSendError),
        (502, TransientSendError),
        (503, TransientSendError),
    ],
)
def test_messages_transport_classifies_answers_when_submit_fails(
    messages_api: FakeMessagesApi, status: int, kind: type
) -> None:
    messages_api.add_mailbox(ORGANIZER)
    messages_api.fail_next(status)

    with pytest.raises(kind, match=str(status)):
        MessagesApiTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)
    assert messages_api.submissions == []


def test_messages_transport_is_permanent_when_key_is_wrong(
    messages_api: FakeMessagesApi, settings: Any
) -> None:
    messages_api.add_mailbox(ORGANIZER)
    settings.MESSAGES_API_KEY = "not-the-key-of-this-channel"

    with pytest.raises(PermanentSendError, match="401"):
        MessagesApiTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)


def test_messages_transport_is_permanent_when_scope_is_missing(
    messages_api: FakeMessagesApi, settings: Any
) -> None:
    messages_api.add_mailbox(ORGANIZER)
    channel = messages_api.add_channel({SCOPE_MAILBOXES_READ})
    settings.MESSAGES_API_KEY = channel.key
    settings.MESSAGES_CHANNEL_ID = channel.id

    with pytest.raises(PermanentSendError, match="403") as caught:
        MessagesApiTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)
    assert "messages:send" in caught.value.reason


def test_messages_transport_is_permanent_when_mailbox_channel_cannot_look_up(
    messages_api: FakeMessagesApi, settings: Any
) -> None:
    mailbox_id = messages_api.add_mailbox(ORGANIZER)
    channel = messages_api.add_channel({SCOPE_SEND, SCOPE_MAILBOXES_READ}, {mailbox_id})
    settings.MESSAGES_API_KEY = channel.key
    settings.MESSAGES_CHANNEL_ID = channel.id

    with pytest.raises(PermanentSendError, match="mailbox lookup answered HTTP 403"):
        MessagesApiTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)


def test_messages_transport_sends_from_the_mailbox_when_email_is_from_another_address(
    messages_api: FakeMessagesApi,
) -> None:
    messages_api.add_mailbox(ORGANIZER)

    MessagesApiTransport().send(
        email=_email(from_email="Alice Martin <convoke@example.org>"),
        sender=ORGANIZER,
        recipient=ATTENDEE,
    )

    [submission] = messages_api.submissions
    [author] = submission.message["From"].addresses
    assert (author.display_name, author.addr_spec) == ("Alice Martin", ORGANIZER)


def _submit_raw(api: FakeMessagesApi, settings: Any, raw: bytes, mailbox_id: str) -> Any:
    return requests.post(
        api.url + "/api/v1.0/submit/",
        data=raw,
        headers={
            "Content-Type": "message/rfc822",
            "X-Channel-Id": settings.MESSAGES_CHANNEL_ID,
            "X-API-Key": settings.MESSAGES_API_KEY,
            "X-Mail-From": mailbox_id,
            "X-Rcpt-To": ATTENDEE,
        },
        timeout=5,
    )


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (f"From: Convoke <convoke@example.org>\r\nTo: {ATTENDEE}\r\n", 403),
        (f"From: {ORGANIZER}, carol@example.org\r\nTo: {ATTENDEE}\r\n", 403),
        (f"From: {ORGANIZER}\r\nTo: {ATTENDEE}\r\nBcc: carol@example.net\r\n", 400),
        (f"From: {ORGANIZER}\r\nTo: {ATTENDEE}\r\n", 202),
    ],
    ids=["from-mismatch", "two-from", "bcc", "valid"],
)
def test_fake_messages_api_follows_the_submit_contract(
    messages_api: FakeMessagesApi, settings: Any, headers: str, status: int
) -> None:
    mailbox_id = messages_api.add_mailbox(ORGANIZER)
    raw = (headers + "Subject: hi\r\nMessage-ID: <1@x>\r\n\r\nbody\r\n").encode()

    response = _submit_raw(messages_api, settings, raw, mailbox_id)

    assert response.status_code == status
    assert "detail" in response.json() or response.json()["status"] == "accepted"


def test_messages_transport_is_permanent_when_sender_has_no_mailbox(
    messages_api: FakeMessagesApi,
) -> None:
    with pytest.raises(PermanentSendError, match="no mailbox"):
        MessagesApiTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)
    assert messages_api.state.submit_requests == 0


def test_messages_transport_refuses_bcc_before_submitting(messages_api: FakeMessagesApi) -> None:
    messages_api.add_mailbox(ORGANIZER)

    with pytest.raises(PermanentSendError, match="Bcc"):
        MessagesApiTransport().send(
            email=_email(bcc=["carol@example.net"]), sender=ORGANIZER, recipient=ATTENDEE
        )
    assert messages_api.state.submit_requests == 0


def test_messages_transport_is_transient_when_lookup_throttled(
    messages_api: FakeMessagesApi,
) -> None:
    messages_api.add_mailbox(ORGANIZER)
    messages_api.fail_next(429, kind="lookup")

    with pytest.raises(TransientSendError, match="429"):
        MessagesApiTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)


def test_messages_transport_is_transient_when_server_unreachable(
    messages_api: FakeMessagesApi, settings: Any, unused_port: int
) -> None:
    settings.MESSAGES_API_URL = f"http://127.0.0.1:{unused_port}"

    with pytest.raises(TransientSendError, match="cannot reach"):
        MessagesApiTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)


def test_messages_transport_is_permanent_when_not_configured(settings: Any) -> None:
    settings.MESSAGES_API_URL = ""

    with pytest.raises(PermanentSendError, match="not configured"):
        MessagesApiTransport().send(email=_email(), sender=ORGANIZER, recipient=ATTENDEE)
