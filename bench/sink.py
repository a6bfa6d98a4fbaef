"""An SMTP sink for the benchmarks, in a process of its own (``python bench/sink.py``).

It accepts every message on 127.0.0.1, after ``delay`` seconds per message when asked to (a
slow relay), and counts: messages accepted, SMTP sessions open now and at most. A line
protocol on a second port controls it, so its CPU is its own and the load client's GIL is not
shared: ``STATS`` answers one JSON line, ``DELAY <seconds>`` sets the delay, ``PEAK`` resets the
peak of concurrent sessions to the current number.

Both offer PIPELINING (RFC 2920) in their EHLO answer, as the relays Convoke sends to do
(Postfix, the providers' submission servers): MAIL, RCPT and DATA may arrive in one write.

Two servers can do the receiving (``--impl``):

- ``light`` (the default): the few SMTP commands a mailer sends (RFC 5321: EHLO/HELO, MAIL,
  RCPT, DATA, RSET, NOOP, QUIT), answered from an ``asyncio.Protocol`` without parsing the
  message. A sink shares the machine with what is measured, and aiosmtpd costs about 1.5 ms
  of CPU per message (its per-line coroutines and envelope parsing): at the rates measured
  here that is a sixth of the machine, taken from Convoke. This one costs about a tenth of it.
- ``aiosmtpd``: the library's server, as the earlier measurements used.

Prints ``READY <smtp port> <control port>`` once both listen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any


class Counts:
    def __init__(self) -> None:
        self.delay = 0.0
        self.accepted = 0
        self.sessions = 0
        self.peak_sessions = 0
        self.connections = 0
        self.first_at = 0.0
        self.last_at = 0.0

    def opened(self) -> None:
        self.sessions += 1
        self.connections += 1
        self.peak_sessions = max(self.peak_sessions, self.sessions)

    def accept(self) -> None:
        self.accepted += 1
        now = time.time()
        self.first_at = self.first_at or now
        self.last_at = now


COUNTS = Counts()
HOSTNAME = b"sink.bench.invalid"
MAX_LINE = 4096  # a command line longer than this is refused (RFC 5321 4.5.3.1.4: 512)
MAX_MESSAGE = 64 * 1024 * 1024


# --- light: a protocol object per connection ---------------------------------------------------


class LightSMTP(asyncio.Protocol):
    """One SMTP session: commands line by line, then the message until ``CRLF.CRLF``."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.buffer = bytearray()
        self.in_data = False
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        COUNTS.opened()
        transport.write(b"220 " + HOSTNAME + b" ESMTP bench sink\r\n")

    def connection_lost(self, error: Any) -> None:
        self.closed = True
        COUNTS.sessions -= 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.buffer and not self.closed:
            if self.in_data:
                if not self._message_end():
                    return
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                if len(self.buffer) > MAX_LINE:
                    self._reply(b"500 5.5.2 Line too long")
                    self.transport.close()
                return
            line = bytes(self.buffer[:end])
            del self.buffer[: end + 2]
            self._command(line)

    def _message_end(self) -> bool:
        """True once the message's ``.`` line has arrived (the rest of the buffer is kept)."""
        if self.buffer.startswith(b".\r\n"):
            end, length = 0, 3
        else:
            end = self.buffer.find(b"\r\n.\r\n")
            length = 5
            if end < 0:
                if len(self.buffer) > MAX_MESSAGE:
                    self._reply(b"552 5.3.4 Message too big")
                    self.transport.close()
                return False
        del self.buffer[: end + length]
        self.in_data = False
        if COUNTS.delay:
            asyncio.get_running_loop().call_later(COUNTS.delay, self._accepted)
        else:
            self._accepted()
        return True

    def _accepted(self) -> None:
        if not self.closed:
            COUNTS.accept()
            self._reply(b"250 2.0.0 Accepted")

    def _reply(self, line: bytes) -> None:
        self.transport.write(line + b"\r\n")

    def _command(self, line: bytes) -> None:
        verb = line[:4].upper()
        if verb == b"EHLO":
            self.transport.write(
                b"250-" + HOSTNAME + b"\r\n250-SIZE 33554432\r\n250-8BITMIME\r\n"
                b"250-SMTPUTF8\r\n250-PIPELINING\r\n250 HELP\r\n"
            )
        elif verb == b"HELO":
            self._reply(b"250 " + HOSTNAME)
        elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
            self._reply(b"250 2.0.0 OK")
        elif verb == b"DATA":
            self.in_data = True
            self._reply(b"354 End data with <CR><LF>.<CR><LF>")
        elif verb == b"QUIT":
            self._reply(b"221 2.0.0 Bye")
            self.transport.close()
        else:
            self._reply(b"502 5.5.1 Command not implemented")


def light_factory() -> asyncio.Protocol:
    return LightSMTP()


# --- aiosmtpd -----------------------------------------------------------------------------------


def aiosmtpd_factory() -> asyncio.Protocol:
    from aiosmtpd.smtp import SMTP

    class Handler:
        async def handle_EHLO(
            self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
        ) -> list[str]:
            session.host_name = hostname
            return [*responses[:-1], "250-PIPELINING", responses[-1]]

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            if COUNTS.delay:
                await asyncio.sleep(COUNTS.delay)
            COUNTS.accept()
            return "250 2.0.0 Accepted"

    class CountingSMTP(SMTP):
        def connection_made(self, transport: Any) -> None:
            COUNTS.opened()
            super().connection_made(transport)

        def connection_lost(self, error: Any) -> None:
            COUNTS.sessions -= 1
            super().connection_lost(error)

    return CountingSMTP(Handler(), hostname=HOSTNAME.decode())


# --- control ------------------------------------------------------------------------------------


async def control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        words = line.decode().split()
        if words and words[0] == "DELAY":
            COUNTS.delay = float(words[1])
        elif words and words[0] == "PEAK":
            COUNTS.peak_sessions = COUNTS.sessions
        answer = {
            "accepted": COUNTS.accepted,
            "sessions": COUNTS.sessions,
            "peak_sessions": COUNTS.peak_sessions,
            "connections": COUNTS.connections,
            "delay": COUNTS.delay,
            "last_at": COUNTS.last_at,
        }
        writer.write((json.dumps(answer) + "\n").encode())
        await writer.drain()
    writer.close()


async def main(impl: str) -> None:
    loop = asyncio.get_running_loop()
    factory = light_factory if impl == "light" else aiosmtpd_factory
    server = await loop.create_server(factory, "127.0.0.1", 0, backlog=1024)
    controller = await asyncio.start_server(control, "127.0.0.1", 0)
    smtp_port = server.sockets[0].getsockname()[1]
    control_port = controller.sockets[0].getsockname()[1]
    print(f"READY {smtp_port} {control_port}", flush=True)
    await asyncio.gather(server.serve_forever(), controller.serve_forever())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=("light", "aiosmtpd"), default="light")
    try:
        asyncio.run(main(parser.parse_args().impl))
    except KeyboardInterrupt:
        sys.exit(0)
