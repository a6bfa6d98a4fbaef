"""A fake La Suite Messages API: a real HTTP server on 127.0.0.1 following the contract.

Contract (docs/messages-and-caldav.md, from the Messages backend):

- ``POST /api/v1.0/submit/`` with ``Content-Type: message/rfc822`` and a complete RFC 5322
  message; ``X-Channel-Id`` + ``X-API-Key`` (401 when wrong), scope ``messages:send`` (403),
  ``X-Mail-From: <mailbox id>`` (404 unknown, 403 not covered by the channel),
  ``X-Rcpt-To`` (400 when missing or too many). The From header must hold exactly one
  address, the mailbox's (403); a Bcc header is refused (400). 202
  ``{"message_id": ..., "status": "accepted"}``.
- ``GET /api/v1.0/provisioning/mailboxes/?email=...``: global channels with scope
  ``mailboxes:read``; ``{"results": [{"id", "email", "name", "users"}]}``.
- Errors are JSON ``{"detail": ...}``. :meth:`FakeMessagesApi.fail_next` makes the next
  requests answer 400/401/403/404/429/5xx on demand.
"""

from __future__ import annotations

import email
import email.policy
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests import log_scan

SCOPE_SEND = "messages:send"
SCOPE_MAILBOXES_READ = "mailboxes:read"
MAX_RECIPIENTS = 100
MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass
class Channel:
    id: str
    key: str
    scopes: set[str]
    mailbox_ids: set[str] | None = None  # None: a global channel


@dataclass(frozen=True)
class Submission:
    mailbox_id: str
    rcpt_to: tuple[str, ...]
    raw: bytes
    headers: dict[str, str]

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _State:
    channels: dict[str, Channel] = field(default_factory=dict)
    mailboxes: dict[str, str] = field(default_factory=dict)  # id -> address
    submissions: list[Submission] = field(default_factory=list)
    lookups: int = 0
    submit_requests: int = 0
    forced: list[tuple[str, int]] = field(default_factory=list)  # (path kind, status)
    submit_delay: float = 0.0  # seconds each submit takes
    submitting: int = 0  # submits being answered now
    peak_submitting: int = 0


class FakeMessagesApi:
    def __init__(self) -> None:
        self.state = _State()
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None
        self.url = ""

    # --- configuration --------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.state = _State()

    def add_mailbox(self, address: str) -> str:
        mailbox_id = str(uuid.uuid4())
        with self.lock:
            self.state.mailboxes[mailbox_id] = address.lower()
        return mailbox_id

    def add_channel(self, scopes: set[str], mailbox_ids: set[str] | None = None) -> Channel:
        channel = Channel(
            id=str(uuid.uuid4()),
            key=secrets.token_urlsafe(24),
            scopes=set(scopes),
            mailbox_ids=mailbox_ids,
        )
        log_scan.SENSITIVE_VALUES.add(channel.key)
        with self.lock:
            self.state.channels[channel.id] = channel
        return channel

    def fail_next(self, status: int, count: int = 1, kind: str = "submit") -> None:
        """The next ``count`` requests of ``kind`` (submit, lookup) answer ``status``."""
        with self.lock:
            self.state.forced.extend([(kind, status)] * count)

    @property
    def submissions(self) -> list[Submission]:
        with self.lock:
            return list(self.state.submissions)

    # --- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # --- request handling -------------------------------------------------------------------
    def _reply(self, handler: BaseHTTPRequestHandler, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode("utf-8")
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _error(self, handler: BaseHTTPRequestHandler, status: int, detail: str) -> None:
        self._reply(handler, status, {"detail": detail})

    def _forced(self, kind: str) -> int | None:
        with self.lock:
            for index, (forced_kind, status) in enumerate(self.state.forced):
                if forced_kind == kind:
                    del self.state.forced[index]
                    return status
        return None

    def _channel(self, handler: BaseHTTPRequestHandler) -> Channel | None:
        channel_id = handler.headers.get("X-Channel-Id", "")
        key = handler.headers.get("X-API-Key", "")
        with self.lock:
            channel = self.state.channels.get(channel_id)
        if channel is None or not secrets.compare_digest(channel.key.encode(), key.encode()):
            return None
        return channel

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(min(length, MAX_BODY_BYTES)) if length else b""
        if method == "POST" and parts.path == "/api/v1.0/submit/":
            self._submit(handler, body)
        elif method == "GET" and parts.path == "/api/v1.0/provisioning/mailboxes/":
            self._lookup(handler, parse_qs(parts.query))
        else:
            self._error(handler, 404, "Not found.")

    def _lookup(self, handler: BaseHTTPRequestHandler, query: dict[str, list[str]]) -> None:
        with self.lock:
            self.state.lookups += 1
        forced = self._forced("lookup")
        if forced is not None:
            self._error(handler, forced, f"Forced answer {forced}.")
            return
        channel = self._channel(handler)
        if channel is None:
            self._error(handler, 401, "Invalid channel or API key.")
            return
        if SCOPE_MAILBOXES_READ not in channel.scopes or channel.mailbox_ids is not None:
            self._error(handler, 403, "This endpoint needs a global channel with mailboxes:read.")
            return
        address = (query.get("email") or [""])[0].lower()
        if not address:
            self._error(handler, 400, "Provide either 'user_email' or 'email' query parameter.")
            return
        with self.lock:
            results = [
                {"id": mailbox_id, "email": mailbox_address, "name": None, "users": []}
                for mailbox_id, mailbox_address in self.state.mailboxes.items()
                if mailbox_address == address
            ]
        self._reply(handler, 200, {"results": results})

    def slow_submits(self, seconds: float) -> None:
        """Each submit is answered after ``seconds`` (a slow Messages server)."""
        with self.lock:
            self.state.submit_delay = seconds

    @property
    def peak_submitting(self) -> int:
        with self.lock:
            return self.state.peak_submitting

    def _submit(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        with self.lock:
            state = self.state
            state.submitting += 1
            state.peak_submitting = max(state.peak_submitting, state.submitting)
            delay = state.submit_delay
        try:
            if delay:
                time.sleep(delay)
        finally:
            # Counted out before the answer is written: the client may open its next submit
            # as soon as it reads this answer, before this thread would run again.
            with self.lock:
                state.submitting -= 1
        self._submit_answer(handler, body)

    def _submit_answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        with self.lock:
            self.state.submit_requests += 1
        forced = self._forced("submit")
        if forced is not None:
            self._error(handler, forced, f"Forced answer {forced}.")
            return
        channel = self._channel(handler)
        if channel is None:
            self._error(handler, 401, "Invalid channel or API key.")
            return
        if SCOPE_SEND not in channel.scopes:
            self._error(handler, 403, "The channel lacks the messages:send scope.")
            return
        if handler.headers.get("Content-Type", "").split(";")[0].strip() != "message/rfc822":
            self._error(handler, 400, "Content-Type must be message/rfc822.")
            return
        mailbox_id = handler.headers.get("X-Mail-From", "")
        rcpt_header = handler.headers.get("X-Rcpt-To", "")
        if not mailbox_id or not rcpt_header:
            self._error(handler, 400, "X-Mail-From and X-Rcpt-To are required.")
            return
        with self.lock:
            mailbox_address = self.state.mailboxes.get(mailbox_id)
        if mailbox_address is None:
            self._error(handler, 404, "Unknown mailbox.")
            return
        if channel.mailbox_ids is not None and mailbox_id not in channel.mailbox_ids:
            self._error(handler, 403, "The channel does not cover this mailbox.")
            return
        recipients = tuple(r.strip() for r in rcpt_header.split(",") if r.strip())
        if not recipients or len(recipients) > MAX_RECIPIENTS:
            self._error(handler, 400, "Too many or no recipients.")
            return
        try:
            message = email.message_from_bytes(body, policy=email.policy.default)
            from_addresses: tuple[Address, ...] = (
                message["From"].addresses if message["From"] else ()
            )
        except (ValueError, TypeError, AttributeError, IndexError):
            self._error(handler, 400, "The message cannot be parsed.")
            return
        if not body.strip() or (message.defects and not from_addresses):
            self._error(handler, 400, "The message cannot be parsed.")
            return
        if message["Bcc"] is not None:
            self._error(handler, 400, "Bcc is not allowed.")
            return
        if len(from_addresses) != 1 or from_addresses[0].addr_spec.lower() != mailbox_address:
            self._error(handler, 403, "The From header does not match the mailbox.")
            return
        submission = Submission(
            mailbox_id=mailbox_id,
            rcpt_to=recipients,
            raw=body,
            headers={key: value for key, value in handler.headers.items()},
        )
        with self.lock:
            self.state.submissions.append(submission)
        self._reply(handler, 202, {"message_id": str(uuid.uuid4()), "status": "accepted"})


@pytest.fixture(scope="session")
def messages_api_server() -> Iterator[FakeMessagesApi]:
    fake = FakeMessagesApi()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def messages_api(messages_api_server: FakeMessagesApi, settings: Any) -> Iterator[FakeMessagesApi]:
    """The fake, cleared, with a global channel (send + read) configured in the settings."""
    from django.core.cache import cache

    messages_api_server.reset()
    channel = messages_api_server.add_channel({SCOPE_SEND, SCOPE_MAILBOXES_READ})
    settings.MESSAGES_API_URL = messages_api_server.url
    settings.MESSAGES_API_KEY = channel.key
    settings.MESSAGES_CHANNEL_ID = channel.id
    cache.clear()
    yield messages_api_server
    messages_api_server.reset()
    cache.clear()
