"""One SMTP mail transaction (invitations/transports/smtp.py) against real servers.

``smtp_transaction`` replaces smtplib's ``sendmail`` in the worker's SMTP sessions; it must
put the same bytes on the wire, raise the same exceptions, and leave the connection fit for
the next email after a refusal. Each case runs against aiosmtpd as it is (no PIPELINING:
one command at a time) and against aiosmtpd offering PIPELINING (RFC 2920), whose handler
checks that MAIL, RCPT and DATA really arrived together.
"""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from invitations.transports.smtp import dot_stuffed, smtp_transaction
from tests.conftest import free_port

SENDER = "alice@example.org"


class Handler:
    """Records what it accepts; refuses on request; when ``pipelining``, offers PIPELINING
    and notes, at each MAIL, whether the rest of the group (up to DATA) had already arrived
    before MAIL was answered (a client waiting for each reply never sends it before)."""

    def __init__(self, *, pipelining: bool) -> None:
        self.pipelining = pipelining
        self.accepted: list[tuple[str, tuple[str, ...], bytes]] = []
        self.grouped: list[bool] = []
        self.refuse_mail: str | None = None
        self.refuse_rcpt: set[str] = set()
        self.data_answer: str | None = None
        self.commands: list[str] = []

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.commands.append("MAIL")
        if self.pipelining:
            # aiosmtpd reads what arrived into its stream's buffer while MAIL is handled.
            deadline = time.monotonic() + 2.0
            grouped = False
            while time.monotonic() < deadline and not grouped:
                grouped = b"DATA\r\n" in bytes(server._reader._buffer).upper()
                await asyncio.sleep(0.01)
            self.grouped.append(grouped)
        if self.refuse_mail:
            return self.refuse_mail
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.commands.append("RCPT")
        if address in self.refuse_rcpt:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        self.commands.append("RSET")
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.commands.append("DATA")
        if self.data_answer:
            return self.data_answer
        self.accepted.append((envelope.mail_from, tuple(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 Accepted"


@pytest.fixture(params=[False, True], ids=["lockstep", "pipelining"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[Handler, int]]:
    handler = Handler(pipelining=request.param)
    port = free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, ready_timeout=10.0, decode_data=False
    )
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def connection(server: tuple[Handler, int]) -> Iterator[smtplib.SMTP]:
    client = smtplib.SMTP("127.0.0.1", server[1], timeout=10)
    try:
        yield client
    finally:
        client.close()


def _message(index: int, body: bytes) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: bob@example.net\r\nSubject: message {index}\r\n"
        f"Message-ID: <m{index}@example.org>\r\n\r\n"
    ).encode() + body


TRICKY_BODIES = [
    b"plain\r\n",
    b".leading dot\r\n..two dots\r\n.\r\nlone dot above\r\n",
    b"no final line end",
    b"line\r\n.",
    b"",
]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b".",
        b".\r\n",
        b"a\r\n.b\r\n..c\r\n.\r\n",
        b"a\n.b\n",  # bare LF: smtplib's expression stuffs after any \n, so does ours
        b"\r\n.\r\n.\r\n",
        b"no end",
        b"end\r",
    ],
)
def test_dot_stuffing_gives_smtplibs_bytes_when_lines_start_with_dots(data: bytes) -> None:
    expected = smtplib._quote_periods(data)
    if expected[-2:] != b"\r\n":
        expected += b"\r\n"
    assert dot_stuffed(data) == expected


def test_messages_arrive_as_sent_when_sent_one_after_another_over_one_connection(
    server: tuple[Handler, int], connection: smtplib.SMTP
) -> None:
    handler, _port = server
    messages = [_message(index, body) for index, body in enumerate(TRICKY_BODIES)]

    for data in messages:
        smtp_transaction(connection, sender=SENDER, recipients=["bob@example.net"], data=data)

    assert [mail_from for mail_from, _, _ in handler.accepted] == [SENDER] * len(messages)
    assert {rcpt for _, rcpt, _ in handler.accepted} == {("bob@example.net",)}
    # What the server reads back (dots unstuffed) is the message, line ends completed.
    received = [content for _, _, content in handler.accepted]
    assert received == [d if d.endswith(b"\r\n") else d + b"\r\n" for d in messages]
    assert handler.grouped == ([True] * len(messages) if handler.pipelining else [])


def test_a_refused_recipient_raises_and_the_connection_carries_the_next_email(
    server: tuple[Handler, int], connection: smtplib.SMTP
) -> None:
    handler, _port = server
    handler.refuse_rcpt = {"nobody@example.net"}

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        smtp_transaction(
            connection, sender=SENDER, recipients=["nobody@example.net"], data=_message(1, b"x")
        )
    smtp_transaction(
        connection, sender=SENDER, recipients=["bob@example.net"], data=_message(2, b"y")
    )

    assert refused.value.recipients["nobody@example.net"][0] == 550
    assert [rcpt for _, rcpt, _ in handler.accepted] == [("bob@example.net",)]
    assert "RSET" in handler.commands


def test_a_refused_sender_raises_and_the_connection_carries_the_next_email(
    server: tuple[Handler, int], connection: smtplib.SMTP
) -> None:
    handler, _port = server
    handler.refuse_mail = "553 5.7.1 Sender not allowed"

    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        smtp_transaction(connection, sender=SENDER, recipients=["bob@example.net"], data=b"x\r\n")
    handler.refuse_mail = None
    smtp_transaction(connection, sender=SENDER, recipients=["bob@example.net"], data=b"y\r\n")

    assert refused.value.smtp_code == 553
    assert refused.value.sender == SENDER
    assert [content for _, _, content in handler.accepted] == [b"y\r\n"]


@pytest.mark.parametrize("code", [451, 554])
def test_a_refused_message_raises_its_code_and_the_connection_carries_the_next_email(
    server: tuple[Handler, int], connection: smtplib.SMTP, code: int
) -> None:
    handler, _port = server
    handler.data_answer = f"{code} refused"

    with pytest.raises(smtplib.SMTPDataError) as refused:
        smtp_transaction(connection, sender=SENDER, recipients=["bob@example.net"], data=b"x\r\n")
    handler.data_answer = None
    smtp_transaction(connection, sender=SENDER, recipients=["bob@example.net"], data=b"y\r\n")

    assert refused.value.smtp_code == code
    assert [content for _, _, content in handler.accepted] == [b"y\r\n"]


def test_a_server_closing_at_mail_closes_the_connection(
    server: tuple[Handler, int], connection: smtplib.SMTP
) -> None:
    handler, _port = server
    handler.refuse_mail = "421 4.3.2 Shutting down"

    with pytest.raises(smtplib.SMTPSenderRefused) as refused:
        smtp_transaction(connection, sender=SENDER, recipients=["bob@example.net"], data=b"x\r\n")

    assert refused.value.smtp_code == 421
    assert connection.sock is None  # smtplib's close(), as sendmail does on 421
    assert handler.accepted == []


def test_an_address_that_is_not_ascii_raises_before_anything_is_sent(
    server: tuple[Handler, int], connection: smtplib.SMTP
) -> None:
    handler, _port = server

    with pytest.raises(ValueError):
        smtp_transaction(connection, sender=SENDER, recipients=["zoë@example.net"], data=b"x\r\n")

    assert handler.commands == []
