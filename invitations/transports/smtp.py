"""One SMTP mail transaction over an open ``smtplib.SMTP`` connection, cheaper than ``sendmail``.

:func:`smtp_transaction` does what ``smtplib.SMTP.sendmail`` does for a message already in
bytes with CRLF line ends (what :func:`invitations.mime.email_bytes` writes), and raises the
same exceptions in the same cases, so that :func:`invitations.transports.mailer.classify_exception`
and the session's choice to keep or drop the connection do not change. It still uses
smtplib for everything on the wire (the socket, ``getreply``'s parsing of multi-line replies,
``rset``, ``close``); it writes only the commands and the dot-stuffing itself, because those
are where ``sendmail`` spends its time on the worker (measured over 2,000 sabre-shaped
invitations to ``bench/sink.py``, in the session threads: 0.245 ms of CPU per email in
``sendmail``, 0.107 ms in this function, sockets included):

- the dot-stuffing (RFC 5321 4.5.2): ``sendmail`` runs the regular expression
  ``(?m)^\\.`` over the whole message, about 0.15 ms for an invitation; ``bytes.replace``
  of ``\\n.`` does the same substitution (``^`` in multi-line mode matches at the start and
  after every ``\\n``, nothing else) in a few microseconds;
- the envelope's addresses: ``sendmail`` parses each one again with
  ``email.utils.parseaddr`` (``smtplib.quoteaddr``) for every email; the same function's
  answer is kept here per address (a bounded cache);
- the round trips: when the server's EHLO answer offers PIPELINING (RFC 2920), MAIL, RCPT
  and DATA leave in one write and their replies are read after, in order; the content then
  leaves in a second write, after the 354 (RFC 2920 3.1: DATA ends a group). A server
  without PIPELINING gets one command at a time, as ``sendmail`` sends them.
"""

from __future__ import annotations

import contextlib
import smtplib
from collections.abc import Sequence
from functools import lru_cache

_CRLF = b"\r\n"
_END = b".\r\n"
# The replies that end a transaction in an SMTP client's favour (RFC 5321 4.2.2, 4.3.2).
_MAIL_OK = (250,)
_RCPT_OK = (250, 251)
_DATA_GO = 354
_CLOSING = 421  # the server is closing the connection (RFC 5321 3.8)


def dot_stuffed(data: bytes) -> bytes:
    """``data`` as it travels after DATA, without the final ``.`` line (RFC 5321 4.5.2): a
    ``.`` that starts a line is doubled, and the content ends with CRLF. The same bytes as
    smtplib's ``_quote_periods`` followed by its CRLF check."""
    stuffed = data.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(_CRLF):
        stuffed += _CRLF
    return stuffed


@lru_cache(maxsize=4096)
def _quoted(address: str) -> str:
    """The address as ``sendmail`` writes it in MAIL FROM and RCPT TO (``<...>``)."""
    return smtplib.quoteaddr(address)


def _abandon(connection: smtplib.SMTP, *, data_accepted: bool) -> None:
    """End a transaction that will not carry the message: an empty content when the server
    already said 354 (RFC 2920 3.1; no recipient was accepted, so nothing is delivered),
    then RSET, as ``sendmail`` does after a refusal."""
    if data_accepted:
        connection.send(_END)
        connection.getreply()
    _reset(connection)


def _reset(connection: smtplib.SMTP) -> None:
    """RSET, a disconnection ignored (what ``sendmail`` does after a refusal)."""
    with contextlib.suppress(smtplib.SMTPServerDisconnected):
        connection.rset()


def smtp_transaction(
    connection: smtplib.SMTP, *, sender: str, recipients: Sequence[str], data: bytes
) -> None:
    """Send ``data`` (the message, CRLF line ends) from ``sender`` to ``recipients`` (bare
    addresses) over ``connection``, like ``connection.sendmail(sender, recipients, data)``.

    Raises as ``sendmail`` does: :class:`smtplib.SMTPSenderRefused` (MAIL refused),
    :class:`smtplib.SMTPRecipientsRefused` (every RCPT refused, or one answered 421),
    :class:`smtplib.SMTPDataError` (DATA or the content refused), after an RSET, or after
    closing the connection when the server answered 421; ``ValueError`` (an address that
    is not ASCII) before anything is written; ``smtplib.SMTPServerDisconnected`` and
    ``OSError`` for the connection. Recipients refused while another was accepted are not
    reported (``sendmail`` returns them; a delivery has one recipient).
    """
    connection.ehlo_or_helo_if_needed()
    size = ""
    if connection.does_esmtp and connection.has_extn("size"):
        size = f" size={len(data)}"
    commands = [
        f"mail FROM:{_quoted(sender)}{size}\r\n".encode("ascii"),
        *(f"rcpt TO:{_quoted(recipient)}\r\n".encode("ascii") for recipient in recipients),
        b"data\r\n",
    ]
    message = dot_stuffed(data) + _END
    pipelining = connection.does_esmtp and connection.has_extn("pipelining")
    if pipelining:
        connection.send(b"".join(commands))

    def reply(command: bytes) -> tuple[int, bytes]:
        if not pipelining:
            connection.send(command)
        return connection.getreply()

    code, answer = reply(commands[0])
    if code == _CLOSING:
        connection.close()
        raise smtplib.SMTPSenderRefused(code, answer, sender)
    mail_refused = (code, answer) if code not in _MAIL_OK else None
    if mail_refused and not pipelining:
        _reset(connection)
        raise smtplib.SMTPSenderRefused(code, answer, sender)
    refused: dict[str, tuple[int, bytes]] = {}
    for recipient, command in zip(recipients, commands[1:-1], strict=True):
        code, answer = reply(command)
        if code not in _RCPT_OK:
            refused[recipient] = (code, answer)
        if code == _CLOSING:
            connection.close()
            raise smtplib.SMTPRecipientsRefused(refused)
    if len(refused) == len(recipients) and not pipelining:
        _reset(connection)
        raise smtplib.SMTPRecipientsRefused(refused)
    code, answer = reply(commands[-1])
    if code == _CLOSING:
        connection.close()
        raise smtplib.SMTPDataError(code, answer)
    if mail_refused or len(refused) == len(recipients):
        _abandon(connection, data_accepted=code == _DATA_GO)
        if mail_refused:
            raise smtplib.SMTPSenderRefused(*mail_refused, sender)
        raise smtplib.SMTPRecipientsRefused(refused)
    if code != _DATA_GO:
        _reset(connection)
        raise smtplib.SMTPDataError(code, answer)
    connection.send(message)
    code, answer = connection.getreply()
    if code == _CLOSING:
        connection.close()
    elif code != 250:
        _reset(connection)
    if code != 250:
        raise smtplib.SMTPDataError(code, answer)
