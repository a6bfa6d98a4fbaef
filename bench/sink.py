"""An SMTP sink for the benchmarks, in a process of its own (``python bench/sink.py``).

aiosmtpd on 127.0.0.1 accepts every message, after ``delay`` seconds per message when asked
to (a slow relay), and counts: messages accepted, SMTP sessions open now and at most. A
line protocol on a second port controls it, so its CPU is its own and the load client's GIL
is not shared: ``STATS`` answers one JSON line, ``DELAY <seconds>`` sets the delay,
``PEAK`` resets the peak of concurrent sessions to the current number.

Prints ``READY <smtp port> <control port>`` once both listen.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from aiosmtpd.smtp import SMTP


class Counts:
    def __init__(self) -> None:
        self.delay = 0.0
        self.accepted = 0
        self.sessions = 0
        self.peak_sessions = 0
        self.connections = 0
        self.first_at = 0.0
        self.last_at = 0.0


COUNTS = Counts()


class Handler:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if COUNTS.delay:
            await asyncio.sleep(COUNTS.delay)
        COUNTS.accepted += 1
        now = time.time()
        COUNTS.first_at = COUNTS.first_at or now
        COUNTS.last_at = now
        return "250 2.0.0 Accepted"


class CountingSMTP(SMTP):
    def connection_made(self, transport: Any) -> None:
        COUNTS.sessions += 1
        COUNTS.connections += 1
        COUNTS.peak_sessions = max(COUNTS.peak_sessions, COUNTS.sessions)
        super().connection_made(transport)

    def connection_lost(self, error: Any) -> None:
        COUNTS.sessions -= 1
        super().connection_lost(error)


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


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: CountingSMTP(Handler(), hostname="sink.bench.invalid"), "127.0.0.1", 0, backlog=1024
    )
    controller = await asyncio.start_server(control, "127.0.0.1", 0)
    smtp_port = server.sockets[0].getsockname()[1]
    control_port = controller.sockets[0].getsockname()[1]
    print(f"READY {smtp_port} {control_port}", flush=True)
    await asyncio.gather(server.serve_forever(), controller.serve_forever())


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
