"""Sending many emails at once: sessions to the outside system, each in a thread of its own.

A worker sending one batch of the outbox hands each built email to a :class:`SessionPool`
for its transport. The pool opens sessions only as they are needed, up to ``max_sessions``
(``EMAIL_MAX_SESSIONS`` for the mailer, ``MESSAGES_API_MAX_CONNECTIONS`` for the Messages
API): with a relay that answers at once one session carries the whole batch over one
connection; with a relay that takes seconds per message, many sessions wait on it together
instead of the worker waiting on each message in turn. The threads only talk to the outside
system; every outcome comes back through :meth:`SessionPool.results` to the worker's own
thread, which records them in the database.

A session is one of:

- :class:`SmtpSession`: the Django SMTP backend of ``settings.MAILERS`` opens the
  connection (TLS, authentication, timeout as configured) and the email's bytes
  (:func:`invitations.mime.email_bytes`) go out over it, message after message, in mail
  transactions written by :func:`invitations.transports.smtp.smtp_transaction` (smtplib's
  ``sendmail`` without its per-message regular expression and address parsing, pipelined
  when the relay offers PIPELINING);
- :class:`MailerSession`: any other Django mailer (Brevo through anymail, files), its own
  backend instance per session, ``send_messages`` per email;
- :class:`MessagesSession`: the Messages API transport with a ``requests`` session of its
  own (keep-alive).
"""

from __future__ import annotations

import logging
import queue
import smtplib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import requests
from anymail.exceptions import AnymailError
from django.core.mail import EmailMessage, mailers
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend

from calendars.logs import exception_where
from invitations.mime import email_bytes, envelope_address
from invitations.models import MAILER_TRANSPORTS, DeliveryTransport
from invitations.transports.base import SendError, SendResult
from invitations.transports.mailer import (
    MAILER_ALIAS,
    MAILER_ERRORS,
    classify_exception,
    mailer_send,
)
from invitations.transports.messages_api import MessagesApiTransport
from invitations.transports.smtp import smtp_transaction

logger = logging.getLogger(__name__)

# A session left without work this long closes (its thread ends); the next email opens one.
IDLE_SECONDS = 5.0
# Another session opens when an email has waited this long with every session busy.
SPAWN_AFTER_SECONDS = 0.25


@dataclass
class Outgoing:
    """One built email for one delivery."""

    delivery_id: int
    email: EmailMessage
    sender: str  # on whose behalf (the iTIP sender)
    recipient: str


@dataclass
class Sent:
    """What happened to one :class:`Outgoing`: a result, a classified error, or a crash
    (an unexpected exception, by type and place only: its text may quote an address)."""

    delivery_id: int
    result: SendResult | None = None
    error: SendError | None = None
    crash: str = ""


class Session(Protocol):
    def send(self, item: Outgoing) -> SendResult:
        """Send one email; raises :class:`SendError` (classified)."""
        ...

    def close(self) -> None: ...


class SmtpSession:
    """One SMTP connection, opened by Django's SMTP backend, carrying message after message."""

    _KEEPS_CONNECTION = (
        smtplib.SMTPRecipientsRefused,
        smtplib.SMTPSenderRefused,
        smtplib.SMTPDataError,
    )

    def __init__(self) -> None:
        backend = mailers.create_connection(MAILER_ALIAS)
        assert isinstance(backend, SmtpBackend)
        self.backend = backend

    def send(self, item: Outgoing) -> SendResult:
        try:
            data = email_bytes(item.email)
            envelope_from = envelope_address(str(item.email.from_email))
            envelope_to = [envelope_address(str(address)) for address in item.email.recipients()]
            self.backend.open()
            connection = self.backend.connection
            if connection is None:
                raise smtplib.SMTPServerDisconnected("no connection")
            smtp_transaction(connection, sender=envelope_from, recipients=envelope_to, data=data)
        except self._KEEPS_CONNECTION as exc:
            raise classify_exception(exc) from exc  # the transaction was reset (RSET)
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            self._drop()
            raise classify_exception(exc) from exc
        return SendResult()

    def _drop(self) -> None:
        try:
            self.backend.close()
        except (smtplib.SMTPException, OSError):
            self.backend.connection = None

    def close(self) -> None:
        self._drop()


class MailerSession:
    """A Django mailer other than SMTP: its own backend instance, opened once."""

    def __init__(self) -> None:
        self.backend = mailers.create_connection(MAILER_ALIAS)
        self.opened = False

    def send(self, item: Outgoing) -> SendResult:
        if not self.opened:
            try:
                self.backend.open()
            except MAILER_ERRORS as exc:
                raise classify_exception(exc) from exc
            self.opened = True
        return mailer_send(self.backend, item.email)

    def close(self) -> None:
        if self.opened:
            try:
                self.backend.close()
            except (smtplib.SMTPException, AnymailError, OSError):
                logger.info("mailer session not closed cleanly")


class MessagesSession:
    """The Messages API over one ``requests`` session (connections kept alive)."""

    def __init__(self) -> None:
        self.http = requests.Session()
        self.transport = MessagesApiTransport(http=self.http)

    def send(self, item: Outgoing) -> SendResult:
        return self.transport.send(email=item.email, sender=item.sender, recipient=item.recipient)

    def close(self) -> None:
        self.http.close()


def mailer_session_factory() -> Callable[[], Session]:
    """Sessions for the configured mailer: SMTP connections when it is Django's SMTP backend."""
    backend = mailers.create_connection(MAILER_ALIAS)
    if isinstance(backend, SmtpBackend):
        return SmtpSession
    return MailerSession


class SessionPool:
    """Up to ``max_sessions`` sessions, each a thread sending the emails handed to it.

    The first email opens a session; another opens only when an email has waited
    ``SPAWN_AFTER_SECONDS`` with every open session busy, so a relay that answers at once is
    served by one connection and a slow one by as many as it needs, up to the limit.
    :meth:`submit` never blocks: the caller asks :meth:`free` how many more emails it may hand
    over, so that a slow relay slows the worker's claims rather than filling its memory, and
    takes back with :meth:`cancel_waiting` those no session started when it stops.
    """

    def __init__(self, factory: Callable[[], Session], max_sessions: int, *, name: str) -> None:
        self.factory = factory
        self.max_sessions = max(1, max_sessions)
        self.name = name
        self.peak_sessions = 0
        self._work: deque[tuple[float, Outgoing | None]] = deque()
        self._results: queue.Queue[Sent] = queue.Queue()
        self._ready = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._live = 0  # session threads running
        self._idle = 0  # of which waiting for work
        self._pending = 0  # submitted, outcome not yet taken

    @property
    def in_flight(self) -> int:
        """Emails submitted whose outcome :meth:`results` has not returned yet."""
        return self._pending

    def free(self, *, at_least: int = 0) -> int:
        """How many more emails may be submitted now: one being sent and one waiting per
        session, or ``at_least`` (a batch) when that is more."""
        return max(0, max(2 * self.max_sessions, at_least) - self._pending)

    def submit(self, item: Outgoing) -> None:
        with self._ready:
            self._pending += 1
            self._work.append((time.monotonic(), item))
            self._grow()
            self._ready.notify()

    def _grow(self) -> None:
        """Open a session if the oldest waiting email has waited too long (lock held)."""
        if self._live >= self.max_sessions or len(self._work) <= self._idle:
            return
        waited = time.monotonic() - self._work[0][0]
        if self._live == 0 or waited >= SPAWN_AFTER_SECONDS:
            self._live += 1
            self._idle += 1
            self.peak_sessions = max(self.peak_sessions, self._live)
            thread = threading.Thread(target=self._run, name=f"{self.name}-session", daemon=True)
            self._threads.append(thread)
            thread.start()

    def results(self, *, wait: float = 0.0) -> list[Sent]:
        """The outcomes available now, waiting up to ``wait`` seconds for the first one."""
        found: list[Sent] = []
        deadline = time.monotonic() + wait
        while True:
            try:
                found.append(self._results.get_nowait())
            except queue.Empty:
                if found or time.monotonic() >= deadline:
                    break
                with self._ready:
                    self._grow()
                try:
                    found.append(self._results.get(timeout=min(SPAWN_AFTER_SECONDS, wait)))
                except queue.Empty:
                    continue
        with self._ready:
            self._pending -= len(found)
        return found

    def cancel_waiting(self) -> list[Outgoing]:
        """Take back the emails no session has started (their outcome will never come)."""
        with self._ready:
            items = [item for _, item in self._work if item is not None]
            self._work = deque(entry for entry in self._work if entry[1] is None)
            self._pending -= len(items)
        return items

    def close(self, *, timeout: float) -> None:
        """Close every session once its current email is done; wait at most ``timeout`` s."""
        with self._ready:
            threads, self._threads = self._threads, []
            for _ in range(self._live):
                self._work.append((time.monotonic(), None))
            self._ready.notify_all()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _take(self) -> Outgoing | None:
        """The next email for this session, or None when it should close (lock held)."""
        while not self._work:
            if not self._ready.wait(timeout=IDLE_SECONDS) and not self._work:
                return None
        return self._work.popleft()[1]

    def _run(self) -> None:
        session: Session | None = None
        try:
            while True:
                with self._ready:
                    item = self._take()
                    self._idle -= 1
                    if item is None:
                        self._live -= 1
                        return
                outcome, session = self._send(session, item)
                self._results.put(outcome)
                with self._ready:
                    self._idle += 1
                    self._grow()
        finally:
            if session is not None:
                session.close()

    def _send(self, session: Session | None, item: Outgoing) -> tuple[Sent, Session | None]:
        try:
            if session is None:
                session = self.factory()
            return Sent(item.delivery_id, result=session.send(item)), session
        except SendError as exc:
            return Sent(item.delivery_id, error=exc), session
        except Exception as exc:
            # The thread's boundary (docs/style.md rule 12): the unexpected error is recorded
            # for this delivery as a task's boundary would record it, by type and place only,
            # and the next email gets a fresh session.
            logger.error("send crashed delivery=%s error=%s", item.delivery_id, type(exc).__name__)
            if session is not None:
                session.close()
            reason = f"internal error {type(exc).__name__} at {exception_where(exc)}"
            return Sent(item.delivery_id, crash=reason), None


def session_pool(kind: str, *, max_sessions: int) -> SessionPool:
    """A pool for a ``Delivery.transport`` value (or ``"mailer"``, any mailer route)."""
    if kind == DeliveryTransport.MESSAGES:
        return SessionPool(MessagesSession, max_sessions, name="messages")
    if kind in MAILER_TRANSPORTS or kind == "mailer":
        return SessionPool(mailer_session_factory(), max_sessions, name="mailer")
    raise ValueError(f"unknown transport {kind!r}")
