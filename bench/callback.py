"""How fast Convoke acknowledges CalDAV scheduling callbacks (``make bench-callback``).

Starts Convoke under gunicorn and a Celery worker (PostgreSQL and Redis when DATABASE_URL and
CELERY_BROKER_URL are set, a fresh SQLite file and the filesystem broker otherwise), and an
SMTP sink on 127.0.0.1. Then posts N real callbacks built from the shared corpus with C
concurrent clients, twice: with the sink answering at once, and with the sink taking 2 s
per message. Prints acknowledged callbacks per second and the p50/p95/p99 acknowledgement
latency of each run, and how many emails the worker had delivered by the end. The
acknowledgement must not depend on the sink: the two runs should show the same figures.

Every callback is a distinct iTIP message: the corpus files accepted as a REQUEST are reused
with a fresh DTSTAMP each (through the icalendar library), so none is folded as a duplicate.
Everything listens on 127.0.0.1; the run is bounded by --requests and --max-seconds.

With DATABASE_URL set, the benchmark migrates and writes to that database: point it at a
scratch one.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import http.client
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import icalendar
from aiosmtpd.controller import Controller
from cryptography.fernet import Fernet

PROJECT_DIR = Path(__file__).resolve().parent.parent

from stack import Stack, free_port, wait_healthy  # noqa: E402  (bench/ is the script's folder)

CORPUS_DIR = PROJECT_DIR.parent / "shared" / "corpus" / "ics"
CALLBACK_PATH = "/api/v1.0/caldav-scheduling-callback/"


# --- the SMTP sink --------------------------------------------------------------------------------


class Sink:
    """aiosmtpd handler: accepts everything after ``delay`` seconds."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.accepted = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.accepted += 1
        return "250 2.0.0 Accepted"


# --- callbacks from the corpus --------------------------------------------------------------------


@dataclass(frozen=True)
class Callback:
    body: bytes
    sender: str
    recipient: str


def _stamped(body: bytes, stamp: dt.datetime) -> bytes:
    calendar = icalendar.Calendar.from_ical(body)
    for event in calendar.walk("VEVENT"):
        event.pop("DTSTAMP", None)
        event.add("DTSTAMP", stamp)
    return bytes(calendar.to_ical())


def corpus_templates() -> list[Callback]:
    """The corpus files the callback accepts as a REQUEST, with their sender and recipient,
    kept only when a copy with a new DTSTAMP is accepted too."""
    from calendars.ical import ICalendarError, Method, parse_itip
    from scheduling.headers import CallbackHeaderError, address_parse
    from scheduling.services import CallbackRejected, _itip_check

    templates = []
    for path in sorted(CORPUS_DIR.glob("*.ics")):
        body = path.read_bytes()
        try:
            itip = parse_itip(body)
            event = itip.primary
            attendees = [a.address for e in itip.events for a in e.attendees]
            if event.organizer is None or not attendees:
                continue
            sender = address_parse(event.organizer.address, header="sender")
            recipient = address_parse(attendees[0], header="recipient")
            _itip_check(itip, method=Method.REQUEST, sender=sender, recipient=recipient)
            stamped = parse_itip(_stamped(body, dt.datetime(2030, 1, 1, tzinfo=dt.UTC)))
            _itip_check(stamped, method=Method.REQUEST, sender=sender, recipient=recipient)
        except (ICalendarError, CallbackHeaderError, CallbackRejected, ValueError):
            continue
        templates.append(Callback(body=body, sender=sender, recipient=recipient))
    return templates


def distinct_callbacks(templates: list[Callback], count: int, salt: int) -> Iterator[Callback]:
    """``count`` callbacks, each a template with its own DTSTAMP (a distinct iTIP message)."""
    base = dt.datetime(2030, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=salt)
    for index in range(count):
        template = templates[index % len(templates)]
        stamp = base + dt.timedelta(seconds=index)
        yield Callback(_stamped(template.body, stamp), template.sender, template.recipient)


# --- the processes --------------------------------------------------------------------------------


def environment_for(scratch: Path, sink_port: int) -> dict[str, str]:
    environment = dict(os.environ)
    environment.update(
        {
            "DEBUG": "false",
            "DJANGO_SETTINGS_MODULE": "calendars.settings",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "CALDAV_INBOUND_API_KEY": secrets.token_urlsafe(32),
            "FIELD_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "APP_URL": "http://127.0.0.1",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(sink_port),
            "EMAIL_USE_TLS": "false",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    environment.pop("BREVO_API_KEY", None)
    environment.pop("CELERY_TASK_ALWAYS_EAGER", None)
    if not environment.get("DATABASE_URL"):
        environment["DATABASE_URL"] = f"sqlite:///{scratch / 'bench.sqlite3'}"
    if not environment.get("CELERY_BROKER_URL"):
        environment["CELERY_FILESYSTEM_DIR"] = str(scratch / "celery")
    return environment


# --- the load -------------------------------------------------------------------------------------


@dataclass
class RunResult:
    latencies: list[float]
    statuses: dict[int, int]
    seconds: float


def post_all(
    port: int, key: str, callbacks: list[Callback], concurrency: int, max_seconds: float
) -> RunResult:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    cursor = iter(range(len(callbacks)))
    deadline = time.monotonic() + max_seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            callback = callbacks[index]
            headers = {
                "Content-Type": "text/calendar",
                "X-LS-Api-Key": key,
                "X-LS-Sender": f"mailto:{callback.sender}",
                "X-LS-Recipient": f"mailto:{callback.recipient}",
                "X-LS-Method": "REQUEST",
                "X-LS-Is-Mailbox": "false",
            }
            started = time.perf_counter()
            try:
                connection.request("POST", CALLBACK_PATH, body=callback.body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except OSError:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 0
            elapsed = time.perf_counter() - started
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 202:
                    latencies.append(elapsed)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max_seconds + 60)
    return RunResult(latencies, statuses, time.perf_counter() - started)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def delivery_counts() -> dict[str, int]:
    from django.db.models import Count

    from invitations.models import Delivery

    return dict(Delivery.objects.values_list("status").annotate(n=Count("id")).order_by())


def machine() -> str:
    memory = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPU(s) ({platform.processor() or platform.machine()}), {memory} RAM, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="callbacks per run (max 20000)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    parser.add_argument("--web-workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=300.0, help="time bound per run")
    parser.add_argument("--delays", default="0,2", help="SMTP sink delays per message, seconds")
    parser.add_argument("--drain-seconds", type=float, default=30.0)
    parser.add_argument(
        "--warmup", type=int, default=100, help="callbacks posted first and not measured"
    )
    options = parser.parse_args()
    count = max(1, min(options.requests, 20_000))

    scratch = Path(tempfile.mkdtemp(prefix="convoke-bench-"))
    sink = Sink()
    sink_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink_port, ready_timeout=10)
    controller.start()
    environment = environment_for(scratch, sink_port)
    os.environ.update(environment)
    sys.path.insert(0, str(PROJECT_DIR))
    import django

    django.setup()
    from django.conf import settings

    templates = corpus_templates()
    if not templates:
        raise SystemExit(f"no usable corpus files under {CORPUS_DIR}")
    port = free_port()
    stack = Stack(environment=environment, scratch=scratch)
    python = sys.executable
    try:
        subprocess.run(
            [python, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=PROJECT_DIR,
            env=environment,
            check=True,
        )
        stack.spawn(
            python,
            "-m",
            "gunicorn",
            "calendars.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(options.web_workers),
            "--worker-class",
            "sync",
            "--keep-alive",
            "5",
            "--log-level",
            "warning",
            log="gunicorn.log",
        )
        stack.spawn(
            python,
            "-m",
            "celery",
            "-A",
            "calendars",
            "worker",
            "--loglevel",
            "WARNING",
            "--concurrency",
            str(options.celery_concurrency),
            "--without-gossip",
            "--without-mingle",
            log="worker.log",
        )
        wait_healthy(port)
        vendor = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        broker = settings.CELERY_BROKER_URL.split("://", 1)[0]
        print(f"machine: {machine()}")
        print(
            f"convoke: gunicorn {options.web_workers} sync workers, celery worker concurrency "
            f"{options.celery_concurrency}, database {vendor}, broker {broker}"
        )
        print(
            f"load: {count} callbacks per run from {len(templates)} corpus files, "
            f"{options.concurrency} concurrent clients"
        )
        if options.warmup:
            warmup = list(distinct_callbacks(templates, options.warmup, salt=1000))
            post_all(
                port,
                environment["CALDAV_INBOUND_API_KEY"],
                warmup,
                options.concurrency,
                options.max_seconds,
            )
        for run_number, delay in enumerate(float(d) for d in options.delays.split(",")):
            sink.delay = delay
            sent_before = sink.accepted
            callbacks = list(distinct_callbacks(templates, count, salt=run_number))
            result = post_all(
                port,
                environment["CALDAV_INBOUND_API_KEY"],
                callbacks,
                options.concurrency,
                options.max_seconds,
            )
            acknowledged = len(result.latencies)
            delivered_during = sink.accepted - sent_before
            print(
                f"sink delay {delay:g} s: {acknowledged} acknowledged in {result.seconds:.1f} s = "
                f"{acknowledged / result.seconds:.1f} callbacks/s; ack latency "
                f"p50 {percentile(result.latencies, 0.50) * 1000:.0f} ms, "
                f"p95 {percentile(result.latencies, 0.95) * 1000:.0f} ms, "
                f"p99 {percentile(result.latencies, 0.99) * 1000:.0f} ms, "
                f"max {max(result.latencies, default=float('nan')) * 1000:.0f} ms; "
                f"statuses {dict(sorted(result.statuses.items()))}; "
                f"emails delivered meanwhile {delivered_during}"
            )
            deadline = time.monotonic() + options.drain_seconds
            while time.monotonic() < deadline and sink.accepted - sent_before < acknowledged:
                time.sleep(0.5)
            print(
                f"  after {options.drain_seconds:g} s more: "
                f"{sink.accepted - sent_before} emails delivered, deliveries {delivery_counts()}"
            )
    finally:
        stack.stop()
        controller.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
