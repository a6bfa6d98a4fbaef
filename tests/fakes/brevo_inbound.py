"""Brevo's inbound parsing, faked: the webhook payload it posts and the API it serves.

Brevo's inbound parsing turns a received email into a JSON webhook (``{"items": [...]}``: the
headers, the text and HTML bodies, and for each attachment a ``DownloadToken``); the
attachment's bytes are fetched afterwards from ``GET /v3/inbound/attachments/{token}`` with
the account's ``api-key`` header (developers.brevo.com, "Inbound parsing webhooks").

:class:`FakeBrevoApi` is that API as a real HTTP server on 127.0.0.1 (django-anymail's Brevo
inbound webhook downloads attachments from it with ``requests``); :meth:`FakeBrevoApi.payload`
turns a real email (:class:`email.message.EmailMessage`) into the webhook body Brevo would
post for it, registering its attachments for download.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest

from tests.conftest import free_port


class FakeBrevoApi:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.attachments: dict[str, tuple[str, bytes]] = {}
        self.downloads: list[str] = []
        self.down = False
        self.url = ""
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                prefix = "/v3/inbound/attachments/"
                if api.down:
                    self._answer(503, "application/json", b'{"message": "unavailable"}')
                    return
                if self.headers.get("api-key") != api.api_key:
                    self._answer(401, "application/json", b'{"code": "unauthorized"}')
                    return
                token = unquote(self.path[len(prefix) :]) if self.path.startswith(prefix) else ""
                if token not in api.attachments:
                    self._answer(404, "application/json", b'{"code": "document_not_found"}')
                    return
                api.downloads.append(token)
                content_type, content = api.attachments[token]
                self._answer(200, content_type, content)

            def _answer(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v3/"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def payload(self, message: EmailMessage) -> dict[str, Any]:
        """The inbound webhook body Brevo posts for ``message``."""
        # One value per header; a list when the header repeats (e.g. Received).
        headers: dict[str, Any] = {}
        for name in dict.fromkeys(message.keys()):
            values = [str(value) for value in message.get_all(name, [])]
            headers[name] = values[0] if len(values) == 1 else values
        text = html = None
        attachments = []
        for part in message.walk():
            if part.is_multipart():
                continue
            content_type = part.get_content_type()
            if content_type == "text/plain" and text is None and not part.get_filename():
                text = part.get_content()
                continue
            if content_type == "text/html" and html is None and not part.get_filename():
                html = part.get_content()
                continue
            token = secrets.token_urlsafe(24)
            content = part.get_payload(decode=True) or b""
            self.attachments[token] = (content_type, content)
            attachments.append(
                {
                    "Name": part.get_filename() or "invite.ics",
                    "ContentType": content_type,
                    "ContentLength": len(content),
                    "ContentID": None,
                    "DownloadToken": token,
                }
            )
        sender = message["From"].addresses[0]
        return {
            "items": [
                {
                    "Uuid": [secrets.token_hex(16)],
                    "MessageId": str(message["Message-ID"] or ""),
                    "InReplyTo": None,
                    "From": {"Name": sender.display_name, "Address": sender.addr_spec},
                    "To": [
                        {"Name": a.display_name, "Address": a.addr_spec}
                        for a in message["To"].addresses
                    ],
                    "Subject": str(message["Subject"] or ""),
                    "Headers": headers,
                    "RawTextBody": text,
                    "RawHtmlBody": html,
                    "ExtractedMarkdownMessage": text,
                    "Attachments": attachments,
                    "SpamScore": 0.1,
                }
            ]
        }


@pytest.fixture
def brevo_api(settings: Any) -> Iterator[FakeBrevoApi]:
    """The fake Brevo API, with anymail's Brevo settings pointed at it."""
    api = FakeBrevoApi(api_key="xkeysib-test-" + secrets.token_hex(8))
    api.start()
    settings.ANYMAIL = {
        **getattr(settings, "ANYMAIL", {}),
        "BREVO_API_KEY": api.api_key,
        "BREVO_API_URL": api.url,
    }
    try:
        yield api
    finally:
        api.stop()
