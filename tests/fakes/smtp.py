"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it accepts, with failure modes.

Modes, set per test and cleared by :meth:`SmtpSink.reset`:

- ``refuse_next(count, code)``: answer ``code`` (421 or 451, or a 5xx) to the end of DATA of
  the next ``count`` transactions; the content was seen (its Message-ID is recorded in
  ``attempts``) but not accepted.
- ``drop_next(count)``: close the connection at the end of DATA without an answer.
- ``delay_seconds`` / ``delay_stage``: wait before answering RCPT (the transaction is not
  complete, nothing is accepted if the client dies meanwhile) or DATA.
- ``hold()`` / ``release()``: keep every transaction waiting at RCPT until released.
- ``refuse_recipients``: addresses refused at RCPT with 550.

A message is in ``messages`` only once the server answered 250 to its DATA.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.core.mail.backends.base import BaseEmailBackend

from tests.conftest import free_port

MAX_HOLD_SECONDS = 60.0


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"] or "")


class SmtpSink:
    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._controller: Controller | None = None
        self.reset()

    # --- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.messages: list[ReceivedMail] = []
            self.attempts: list[str] = []  # Message-IDs seen at the end of DATA, any answer
            self.rcpt_started = 0  # RCPT commands received (a send in progress)
            self._refuse: list[int] = []
            self._drop = 0
            self.delay_seconds = 0.0
            self.delay_stage = "data"
            self.refuse_recipients: set[str] = set()
        self._released.set()

    def refuse_next(self, count: int, code: int = 451) -> None:
        with self._lock:
            self._refuse = [code] * count

    def drop_next(self, count: int) -> None:
        with self._lock:
            self._drop = count

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` messages were accepted; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return True
            time.sleep(0.02)
        return len(self.messages) >= count

    def wait_for_rcpt(self, count: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.rcpt_started >= count:
                return True
            time.sleep(0.02)
        return False

    # --- aiosmtpd handler hooks -------------------------------------------------------------
    async def _wait_released(self) -> None:
        deadline = time.monotonic() + MAX_HOLD_SECONDS
        while not self._released.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        with self._lock:
            self.rcpt_started += 1
            refused = address.lower() in self.refuse_recipients
        await self._wait_released()
        if self.delay_stage == "rcpt" and self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if refused:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8")
        received = ReceivedMail(
            mail_from=envelope.mail_from, rcpt_tos=tuple(envelope.rcpt_tos), data=data
        )
        with self._lock:
            self.attempts.append(received.message_id)
            code = self._refuse.pop(0) if self._refuse else None
            drop = self._drop > 0
            if drop:
                self._drop -= 1
        if self.delay_stage == "data" and self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if drop:
            server.transport.abort()
            return "421 4.4.2 Connection dropped"
        if code is not None:
            return f"{code} {'4.3.0 Try again later' if code < 500 else '5.0.0 Refused'}"
        with self._lock:
            self.messages.append(received)
        return "250 2.0.0 Accepted"

    # --- life cycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.port = free_port()
        self._controller = Controller(
            self, hostname=self.host, port=self.port, ready_timeout=10.0, decode_data=False
        )
        self._controller.start()

    def stop(self) -> None:
        self.release()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def mailers_setting(self, timeout: float = 10.0) -> dict[str, Any]:
        """A ``MAILERS`` value that sends to this server over plain SMTP."""
        return {
            "default": {
                "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "OPTIONS": {
                    "host": self.host,
                    "port": self.port,
                    "use_tls": False,
                    "timeout": timeout,
                },
            }
        }


class CrashingEmailBackend(BaseEmailBackend):
    """A mail backend with a bug: it raises an unexpected error quoting an address."""

    def send_messages(self, email_messages: Any) -> int:
        raise RuntimeError("backend bug while sending to bob@example.net")


@pytest.fixture(scope="session")
def smtp_sink_server() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def smtp_sink(smtp_sink_server: SmtpSink, settings: Any) -> Iterator[SmtpSink]:
    """The SMTP sink, cleared, with the default mailer pointed at it for this test."""
    smtp_sink_server.reset()
    settings.MAILERS = smtp_sink_server.mailers_setting()
    settings.MAIL_ROUTE = "smtp"  # what settings.py says when EMAIL_HOST is set
    yield smtp_sink_server
    smtp_sink_server.reset()
