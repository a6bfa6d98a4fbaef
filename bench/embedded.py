"""The embedded default under steady callbacks (``make bench-embedded``).

``make run`` (web server, Celery worker and beat on the server-less filesystem broker, SQLite,
mail to files) must run for hours without a crash. This starts ``make run`` in a fresh copy of
the project, posts distinct invitations to the scheduling callback at a steady rate for the
given time, then waits for the worker to write every email. It reports the callbacks
accepted, the emails written (one ``.eml`` file each), the acknowledgement latency, whether
every process of ``make run`` was still alive at the end, and tracebacks in its output.
Exits 1 when ``make run`` died, a callback was refused or an email is missing.

Everything listens on 127.0.0.1; the run is bounded by --minutes and --drain-seconds.
``tests/test_make_run.py`` runs the same soak for a few minutes.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 240.0
ORGANIZER = "alice@example.org"
ATTENDEE = "bob@example.net"
# Variables of the caller's shell that would change what make run starts.
FOREIGN_VARIABLES = (
    "DEBUG",
    "SECRET_KEY",
    "CALDAV_INBOUND_API_KEY",
    "FIELD_ENCRYPTION_KEY",
    "APP_URL",
    "ALLOWED_HOSTS",
    "EMAIL_FILE_PATH",
    "EMAIL_HOST",
    "BREVO_API_KEY",
    "CACHE_URL",
    # The caller's own counters (a test process's): make run empties the folder it is given.
    "PROMETHEUS_MULTIPROC_DIR",
)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def project_copy(target: Path) -> Path:
    """A fresh copy of the project as git sees it (committed and new files, no var/)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        source = PROJECT_DIR / name
        if source.is_file() and not name.startswith("var/"):
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
    return target


def make_run_environment(port: int) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "CELERY_", "VIRTUAL_ENV", "PYTEST"))
        and key not in FOREIGN_VARIABLES
    }
    environment["PORT"] = str(port)
    return environment


@dataclass
class SoakReport:
    seconds: float
    posted: int = 0
    accepted: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    emails: int = 0
    alive_at_end: bool = False
    tracebacks: int = 0
    output_tail: str = ""

    @property
    def missing(self) -> int:
        return self.accepted - self.emails

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0

    @property
    def ok(self) -> bool:
        return self.alive_at_end and not self.refused and self.missing == 0 and self.posted > 0

    def summary(self) -> str:
        return (
            f"{self.seconds:.0f} s: {self.posted} callbacks posted, {self.accepted} accepted "
            f"(refused: {self.refused or 'none'}), {self.emails} emails written, "
            f"{self.missing} missing; acknowledgement p50 {self.percentile(0.5) * 1000:.0f} ms, "
            f"p99 {self.percentile(0.99) * 1000:.0f} ms; make run alive at the end: "
            f"{self.alive_at_end}; tracebacks in its output: {self.tracebacks}"
        )


def _invitation(sample: str, n: int) -> bytes:
    return sample.replace(
        "UID:sample-invitation-0001@convoke.example", f"UID:soak-{n:07d}@convoke.example"
    ).encode()


def _post(port: int, key: str, body: bytes) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(
            "POST",
            "/api/v1.0/caldav-scheduling-callback/",
            body=body,
            headers={
                "Content-Type": "text/calendar",
                "X-LS-Api-Key": key,
                "X-LS-Sender": f"mailto:{ORGANIZER}",
                "X-LS-Recipient": f"mailto:{ATTENDEE}",
                "X-LS-Method": "REQUEST",
                "X-LS-Is-Mailbox": "false",
            },
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _wait_healthy(port: int, runner: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and runner.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.5)
    raise RuntimeError("make run did not serve /healthz")


def _emails_in(mail: Path) -> int:
    return len(list(mail.glob("*.eml"))) if mail.is_dir() else 0


def soak(
    checkout: Path,
    *,
    seconds: float,
    rate: float,
    drain_seconds: float,
    progress_seconds: float | None = None,
) -> SoakReport:
    """Run ``make run`` in ``checkout`` under ``rate`` callbacks/s for ``seconds``; print a
    progress line every ``progress_seconds`` when given."""
    port = free_port()
    log_path = checkout.parent / "make-run.log"
    with log_path.open("w") as log:
        runner = subprocess.Popen(
            ["make", "run"],
            cwd=checkout,
            env=make_run_environment(port),
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    report = SoakReport(seconds=seconds)
    mail = checkout / "var" / "mail"
    try:
        _wait_healthy(port, runner)
        key = next(
            line.partition("=")[2].strip()
            for line in (checkout / "var" / "dev.env").read_text().splitlines()
            if line.startswith("CALDAV_INBOUND_API_KEY=")
        )
        sample = (checkout / "samples" / "invitation.ics").read_text()
        started = time.monotonic()
        next_progress = started + (progress_seconds or float("inf"))
        while time.monotonic() - started < seconds and runner.poll() is None:
            if time.monotonic() >= next_progress:
                next_progress += progress_seconds or float("inf")
                print(
                    f"  {time.monotonic() - started:5.0f} s: {report.posted} posted, "
                    f"{report.accepted} accepted, {_emails_in(mail)} emails written",
                    flush=True,
                )
            due = started + report.posted / rate
            time.sleep(max(0.0, due - time.monotonic()))
            begun = time.monotonic()
            try:
                status = _post(port, key, _invitation(sample, report.posted))
            except OSError:
                status = 0  # the web server is gone
            report.latencies.append(time.monotonic() - begun)
            report.posted += 1
            if status == 202:
                report.accepted += 1
            else:
                report.refused[status] = report.refused.get(status, 0) + 1
        deadline = time.monotonic() + drain_seconds
        while time.monotonic() < deadline and runner.poll() is None:
            report.emails = _emails_in(mail)
            if report.emails >= report.accepted:
                break
            time.sleep(1)
        report.emails = _emails_in(mail)
        report.alive_at_end = runner.poll() is None
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGINT)
        try:
            runner.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(runner.pid, signal.SIGKILL)
            runner.wait()
    output = log_path.read_text(errors="replace") if log_path.is_file() else "(log gone)"
    report.tracebacks = output.count("Traceback (most recent call last)")
    report.output_tail = output[-4000:]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="how long to post callbacks")
    parser.add_argument("--rate", type=float, default=2.0, help="callbacks per second")
    parser.add_argument("--drain-seconds", type=float, default=120.0)
    parser.add_argument("--scratch", type=Path, default=None, help="parent of the copy")
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="convoke-bench-embedded.", dir=options.scratch))
    try:
        checkout = project_copy(scratch / "convoke")
        print(
            f"make run for {options.minutes:g} min at {options.rate:g} callbacks/s ...",
            flush=True,
        )
        report = soak(
            checkout,
            seconds=options.minutes * 60,
            rate=options.rate,
            drain_seconds=options.drain_seconds,
            progress_seconds=300.0,
        )
        print(report.summary())
        if not report.ok:
            print(report.output_tail, file=sys.stderr)
            sys.exit(1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
