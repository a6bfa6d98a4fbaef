"""A small mail catcher for the stack check, standing in for Mailpit.

SMTP on port 1025 (aiosmtpd, no authentication, no TLS) keeps every message in memory; port
8025 answers the part of Mailpit's HTTP API that the stack check and a curious operator use:

- ``GET /readyz``: 200 when running;
- ``GET /api/v1/messages``: ``{"total", "count", "messages_count", "start", "messages": [...]}``,
  newest first, each with ``ID``, ``MessageID``, ``From``, ``To``, ``Subject``, ``Created``,
  ``Size``, ``Attachments`` (a count) and ``Snippet``;
- ``GET /api/v1/message/<ID>``: the summary fields plus ``Text``, ``HTML`` and
  ``Attachments`` (``FileName``, ``ContentType``, ``Size``);
- ``GET /api/v1/message/<ID>/raw``: the message as received;
- ``DELETE /api/v1/messages``: forget every message.
"""

from __future__ import annotations

import datetime as dt
import email
import json
import signal
import sys
import threading
import uuid
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

LOCK = threading.Lock()
MESSAGES: list[dict[str, Any]] = []  # newest last


def _addresses(header: object) -> list[dict[str, str]]:
    addresses = getattr(header, "addresses", ()) if header is not None else ()
    return [{"Name": a.display_name, "Address": a.addr_spec} for a in addresses]


def _summary(stored: dict[str, Any]) -> dict[str, Any]:
    parsed: EmailMessage = stored["parsed"]
    text = _body(parsed, "plain")
    return {
        "ID": stored["id"],
        "MessageID": (parsed["Message-ID"] or "").strip("<>"),
        "From": (_addresses(parsed["From"]) or [{"Name": "", "Address": ""}])[0],
        "To": _addresses(parsed["To"]),
        "Cc": _addresses(parsed["Cc"]),
        "ReplyTo": _addresses(parsed["Reply-To"]),
        "Subject": str(parsed["Subject"] or ""),
        "Created": stored["created"],
        "Size": len(stored["raw"]),
        "Attachments": len(_attachments(parsed)),
        "Snippet": " ".join(text.split())[:250],
    }


def _body(parsed: EmailMessage, subtype: str) -> str:
    part = parsed.get_body(preferencelist=(subtype,))
    return part.get_content() if part is not None else ""


def _attachments(parsed: EmailMessage) -> list[dict[str, Any]]:
    return [
        {
            "FileName": part.get_filename() or "",
            "ContentType": part.get_content_type(),
            "Size": len(part.get_payload(decode=True) or b""),
        }
        for part in parsed.iter_attachments()
    ]


class Handler:
    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        parsed = email.message_from_bytes(raw, policy=policy.default)
        stored = {
            "id": uuid.uuid4().hex,
            "raw": raw,
            "parsed": parsed,
            "created": dt.datetime.now(dt.UTC).isoformat(),
        }
        with LOCK:
            MESSAGES.append(stored)
        return "250 Message accepted"


class Api(BaseHTTPRequestHandler):
    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, value: object, status: int = 200) -> None:
        self._send(status, json.dumps(value).encode())

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        with LOCK:
            stored = list(reversed(MESSAGES))
        if path == "/readyz":
            self._send(200, b"ok", "text/plain")
        elif path == "/api/v1/messages":
            summaries = [_summary(m) for m in stored]
            self._json(
                {
                    "total": len(summaries),
                    "count": len(summaries),
                    "messages_count": len(summaries),
                    "start": 0,
                    "messages": summaries,
                }
            )
        elif path.startswith("/api/v1/message/"):
            wanted, _, raw = path.removeprefix("/api/v1/message/").partition("/")
            found = next((m for m in stored if m["id"] == wanted), None)
            if found is None:
                self._json({"error": "not found"}, 404)
            elif raw == "raw":
                self._send(200, found["raw"], "message/rfc822")
            else:
                parsed = found["parsed"]
                self._json(
                    {
                        **_summary(found),
                        "Text": _body(parsed, "plain"),
                        "HTML": _body(parsed, "html"),
                        "Attachments": _attachments(parsed),
                    }
                )
        else:
            self._json({"error": "not found"}, 404)

    def do_DELETE(self) -> None:
        if self.path.rstrip("/") == "/api/v1/messages":
            with LOCK:
                MESSAGES.clear()
            self._send(200, b"ok", "text/plain")
        else:
            self._json({"error": "not found"}, 404)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    # PID 1 of its container: without a handler, `docker stop` would wait and then kill.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    controller = Controller(Handler(), hostname="0.0.0.0", port=1025)  # noqa: S104
    controller.start()
    print("mail catcher: SMTP on 1025, listing on 8025", flush=True)
    ThreadingHTTPServer(("0.0.0.0", 8025), Api).serve_forever()  # noqa: S104


if __name__ == "__main__":
    main()
