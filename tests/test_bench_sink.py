"""The benchmarks' SMTP sink (bench/sink.py) receives what a mailer sends and counts it right.

The sink is what the delivery benchmark counts deliveries with, so its counts are its output:
these run it as the benchmark does (a child process, its control port) and talk SMTP to it
with smtplib, as Convoke's transports do.
"""

from __future__ import annotations

import json
import smtplib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

SINK = Path(__file__).resolve().parent.parent / "bench" / "sink.py"


class Sink:
    def __init__(self, impl: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SINK), "--impl", impl], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        words = self.process.stdout.readline().split()
        assert words and words[0] == "READY", words
        self.smtp_port, control_port = int(words[1]), int(words[2])
        self.control = socket.create_connection(("127.0.0.1", control_port), timeout=10)
        self.reader = self.control.makefile("r")

    def command(self, line: str = "STATS") -> dict:
        self.control.sendall((line + "\n").encode())
        return json.loads(self.reader.readline())

    def close(self) -> None:
        self.control.close()
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(params=["light", "aiosmtpd"])
def sink(request: pytest.FixtureRequest) -> Iterator[Sink]:
    running = Sink(request.param)
    try:
        yield running
    finally:
        running.close()


def _message(index: int, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "alice@example.org"
    message["To"] = "bob@example.net"
    message["Subject"] = f"message {index}"
    message.set_content(body)
    return message


def test_sink_counts_every_message_of_a_session_when_bodies_hold_dots(sink: Sink) -> None:
    bodies = ["plain", ".\nA line that is a dot, dot-stuffed by smtplib", "é" * 5000 + "\n.."]
    with smtplib.SMTP("127.0.0.1", sink.smtp_port, timeout=10) as client:
        for index, body in enumerate(bodies):
            refused = client.send_message(_message(index, body))
            assert refused == {}
        stats = sink.command()
        assert stats["accepted"] == 3
        assert stats["sessions"] == 1
        client.rset()
        assert client.noop()[0] == 250
    stats = sink.command()
    assert stats["connections"] == 1
    assert stats["peak_sessions"] == 1


def test_sink_counts_concurrent_sessions_and_resets_the_peak(sink: Sink) -> None:
    clients = [smtplib.SMTP("127.0.0.1", sink.smtp_port, timeout=10) for _ in range(3)]
    try:
        for client in clients:
            client.ehlo()
        assert sink.command()["peak_sessions"] == 3
    finally:
        for client in clients:
            client.quit()
    # The sink learns of each QUIT a moment later; PEAK then starts from what is open.
    for _ in range(50):
        if sink.command()["sessions"] == 0:
            break
        threading.Event().wait(0.05)
    assert sink.command("PEAK")["peak_sessions"] == 0


def test_sink_answers_data_only_after_its_delay(sink: Sink) -> None:
    sink.command("DELAY 1")
    answered = threading.Event()

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", sink.smtp_port, timeout=10) as client:
            client.send_message(_message(0, "slow"))
        answered.set()

    sender = threading.Thread(target=send)
    sender.start()
    # Whatever the scheduling, the message is not counted (nor answered) before the delay.
    assert not answered.wait(0.5)
    assert sink.command()["accepted"] == 0
    sender.join(timeout=10)
    assert answered.is_set()
    assert sink.command()["accepted"] == 1


def test_sink_offers_pipelining_and_answers_a_group_of_commands_in_order(sink: Sink) -> None:
    # RFC 2920: MAIL, RCPT and DATA in one write, the replies read after; the content after
    # the 354; then the next group on the same connection.
    with smtplib.SMTP("127.0.0.1", sink.smtp_port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("pipelining")
        for index in range(2):
            client.send(
                b"MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\n"
                b"RCPT TO:<carol@example.net>\r\nDATA\r\n"
            )
            codes = [client.getreply()[0] for _ in range(4)]
            assert codes == [250, 250, 250, 354]
            client.send(b"Subject: %d\r\n\r\n..dot\r\n.\r\n" % index)
            assert client.getreply()[0] == 250
    assert sink.command()["accepted"] == 2
