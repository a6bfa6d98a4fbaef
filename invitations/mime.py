"""The bytes of an outbox email, as an SMTP relay or the Messages API receives them.

Django's ``EmailMessage.message()`` builds the MIME tree with the email package's modern API,
which parses every header it sets and encodes every part twice to choose its transfer
encoding: about 2.5 ms per invitation, more than rendering it. The outbox's emails all have
one shape (RFC 6047 section 2.4)::

    multipart/mixed
      multipart/alternative
        text/plain; charset="utf-8"      quoted-printable
        text/html; charset="utf-8"       quoted-printable
      text/calendar; charset="utf-8"; method=REQUEST    base64, attachment "invite.ics"

so :func:`email_bytes` writes that shape with the email package's own encoders
(``binascii`` quoted-printable and base64, :mod:`email.header` for RFC 2047 words,
:mod:`email.utils` for addresses and dates), and hands any other shape (Cc, Bcc, other
attachments, another charset) to Django's ``message()``. :class:`CalendarPart` is the
calendar part both ways: a ``MIMEPart`` for Django, with its data at hand for the writer.

Header values never carry CR or LF (checked here; the renderer removes control characters
before), addresses are IDNA-encoded like Django does, and a boundary starts with ``=_``,
which neither encoding can produce (RFC 2045 section 6.7).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.policy
import secrets
from email.header import Header
from email.headerregistry import AddressHeader, HeaderRegistry
from email.message import MIMEPart
from email.utils import format_datetime, formataddr
from functools import lru_cache
from typing import Any

from django.core.mail import EmailMessage
from django.utils.encoding import punycode


class _CachingHeaderRegistry(HeaderRegistry):
    """The email package builds a new header class on every lookup; this keeps them."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        key = name.lower()
        found = self._classes.get(key)
        if found is None:
            found = self._classes[key] = super().__getitem__(name)
        return found


# RFC 5322 with CRLF line ends (what SMTP carries), with header classes built once.
SMTP_POLICY = email.policy.SMTP.clone(header_factory=_CachingHeaderRegistry())

ATTACHMENT_FILENAME = "invite.ics"
_CRLF = b"\r\n"


class CalendarPart(MIMEPart):
    """The ``text/calendar`` attachment of an iTIP email (RFC 6047 section 2.4): ``method=``
    in its Content-Type only when given (``CALENDAR_ITIP_ENABLED``), base64 so that the
    calendar's own CRLF line ends travel untouched."""

    def __init__(self, data: bytes, *, method: str | None, filename: str = ATTACHMENT_FILENAME):
        super().__init__(policy=SMTP_POLICY)
        self.data = data
        self.method = method
        self.filename = filename
        for name, value in _calendar_headers(method, filename):
            self[name] = value
        self.encoded = base64.encodebytes(data)  # written by email_bytes as it is
        self.set_payload(self.encoded.decode("ascii"))


@lru_cache(maxsize=64)
def _calendar_headers(method: str | None, filename: str) -> tuple[tuple[str, Any], ...]:
    """The calendar part's headers, parsed once for each method (a parsed header is stored
    as it is, where a string would be parsed again for every email)."""
    content_type = 'text/calendar; charset="utf-8"'
    if method:
        content_type += f"; method={_clean(method)}"
    values = (
        ("Content-Type", content_type),
        ("Content-Transfer-Encoding", "base64"),
        ("Content-Disposition", f'attachment; filename="{_clean(filename)}"'),
    )
    return tuple((name, SMTP_POLICY.header_factory(name, value)) for name, value in values)


def _clean(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("a header value holds a line break")
    return value


def _address(value: str) -> str:
    """A bare address for a header or the envelope, its domain IDNA-encoded; ValueError when
    the local part is not ASCII (it would need SMTPUTF8)."""
    local, at, domain = _clean(value).rpartition("@")
    if not at or not local.isascii():
        raise ValueError("the address cannot be sent without SMTPUTF8")
    return f"{local}@{punycode(domain) if not domain.isascii() else domain}"


@lru_cache(maxsize=4096)
def _mailbox(value: str) -> str:
    """``Name <address>``: the display name quoted or RFC 2047-encoded as needed."""
    parsed = AddressHeader.value_parser(_clean(value))
    mailboxes = parsed.all_mailboxes
    if len(mailboxes) != 1 or parsed.all_defects:
        raise ValueError("not one address")
    mailbox = mailboxes[0]
    address = _address(f"{mailbox.local_part}@{mailbox.domain}")
    name = mailbox.display_name or ""
    if name.isascii():
        return formataddr((name, address))
    # RFC 2047 words of at most 75 characters each, folded.
    return Header(name, "utf-8").encode(linesep="\r\n") + f" <{address}>"


def _text_header(value: str) -> str:
    text = _clean(value)
    if text.isascii() and len(text) < 70:
        return text
    return Header(text, "utf-8", header_name="Subject").encode(linesep="\r\n")


@lru_cache(maxsize=1024)
def _qp_line(line: bytes) -> bytes:
    """One line quoted-printable, in its CRLF form (kept: see :func:`_qp`)."""
    return binascii.b2a_qp(line, istext=True).replace(b"\n", _CRLF)


def _qp(text: str) -> bytes:
    """``text`` quoted-printable (``binascii.b2a_qp``, RFC 2045 section 6.7), CRLF line ends.

    ``b2a_qp`` encodes each line on its own (a line's output depends on its bytes and on
    whether an LF ends it, nothing else, once the line ends are LF alone), so each line is
    encoded once and kept: most lines of an email (the HTML template's, long with their
    inlined styles) are the same from email to email. ``b2a_qp`` over a whole sabre-sized
    email's HTML cost about 0.1 ms (8 kB at some 12 ns a byte); the lines looked up, about
    0.01 ms. The 1,024 lines used last are kept, each forgotten on its own when it is the
    oldest. A table of 4,096 emptied at once when full (about 2.8 MB freed, then refilled
    among the batch's other objects) made a pool process's memory climb by about 6 MiB over
    the first 9 minutes of a run at 200 invitations a second (docs/benchmarks.md, fourth
    round).
    """
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return b"".join(map(_qp_line, data.splitlines(keepends=True)))


def _boundary() -> str:
    return "=_" + secrets.token_hex(16)


def _simple(mail: EmailMessage) -> bool:
    """The shape :func:`email_bytes` writes itself."""
    alternatives = getattr(mail, "alternatives", [])
    return (
        not mail.cc
        and not mail.bcc
        and (mail.encoding or "utf-8").lower() in ("utf-8", "utf8")
        and mail.content_subtype == "plain"
        and len(alternatives) <= 1
        and all(mimetype == "text/html" for _content, mimetype in alternatives)
        and all(isinstance(part, CalendarPart) for part in mail.attachments)
        and all(name.lower() == "message-id" for name in mail.extra_headers)
    )


def email_bytes(mail: EmailMessage, *, now: dt.datetime | None = None) -> bytes:
    """The RFC 5322 message for ``mail`` with CRLF line ends (what ``sendmail`` and the
    Messages API take). Raises ValueError for an address or header that cannot be sent."""
    if not _simple(mail):
        return mail.message(policy=SMTP_POLICY).as_bytes()
    headers = [
        ("Subject", _text_header(str(mail.subject))),
        ("From", _mailbox(str(mail.from_email))),
    ]
    if mail.to:
        headers.append(("To", ", ".join(_mailbox(str(address)) for address in mail.to)))
    if mail.reply_to:
        headers.append(("Reply-To", ", ".join(_mailbox(str(address)) for address in mail.reply_to)))
    headers.append(("Date", format_datetime(now or dt.datetime.now(dt.UTC))))
    for name, value in mail.extra_headers.items():
        headers.append((name, _clean(str(value))))
    headers.append(("MIME-Version", "1.0"))

    text_part = [
        b'Content-Type: text/plain; charset="utf-8"',
        b"Content-Transfer-Encoding: quoted-printable",
        b"",
        _qp(str(mail.body)),
    ]
    alternatives = getattr(mail, "alternatives", [])
    if alternatives:
        inner = _boundary()
        body = [f'Content-Type: multipart/alternative; boundary="{inner}"'.encode(), b""]
        body += [f"--{inner}".encode(), *text_part]
        body += [f"--{inner}".encode(), b'Content-Type: text/html; charset="utf-8"']
        body += [b"Content-Transfer-Encoding: quoted-printable", b""]
        body += [_qp(str(alternatives[0][0])), f"--{inner}--".encode()]
    else:
        body = text_part
    if mail.attachments:
        outer = _boundary()
        lines = [f'Content-Type: multipart/mixed; boundary="{outer}"'.encode(), b""]
        lines += [f"--{outer}".encode(), *body]
        for part in mail.attachments:
            assert isinstance(part, CalendarPart)
            content_type = 'Content-Type: text/calendar; charset="utf-8"'
            if part.method:
                content_type += f"; method={_clean(part.method)}"
            lines += [f"--{outer}".encode(), content_type.encode()]
            lines += [b"Content-Transfer-Encoding: base64"]
            lines += [f'Content-Disposition: attachment; filename="{part.filename}"'.encode()]
            lines += [b"", part.encoded.replace(b"\n", _CRLF)]
        lines += [f"--{outer}--".encode(), b""]
    else:
        lines = [*body, b""]
    head = b"".join(f"{name}: {value}".encode("ascii") + _CRLF for name, value in headers)
    return head + _CRLF.join(lines)


@lru_cache(maxsize=4096)
def envelope_address(value: str) -> str:
    """The address for SMTP's MAIL FROM or RCPT TO: the bare address of ``value``."""
    parsed = AddressHeader.value_parser(_clean(value))
    mailboxes = parsed.all_mailboxes
    if len(mailboxes) != 1:
        raise ValueError("not one address")
    return _address(f"{mailboxes[0].local_part}@{mailboxes[0].domain}")
