"""Worst cases of hostile calendars (``make bench-hostile``): callback latency, render time,
what the worker dead-letters.

Inputs: every body of the shared corpus (the .ics files and the calendar part of each .eml),
the hostile corpus (``tests/hostile``: the committed files and the generated 1 MiB shapes),
and ``--mutations`` mutated corpus files (``tests/ical/mutations.py``, seeded by ``--seed``).

1. Callback: Convoke runs as in production (gunicorn sync workers with their 30 s timeout, a
   Celery worker, an SMTP sink on 127.0.0.1, a fresh SQLite file and the filesystem broker,
   or PostgreSQL and Redis when DATABASE_URL and CELERY_BROKER_URL are set). Every input is
   posted once, one at a time, as the CalDAV server posts it (method from its METHOD, sender
   and recipient from its ORGANIZER and first ATTENDEE). Prints the statuses, the p50/p99
   and the worst latency with the input that caused it.
2. Worker: waits (``--drain-seconds``) for the accepted messages to be sent or dead, then
   prints how many were sent, dead-lettered (and why), or still waiting.
3. Render: every input that parses is built as a REQUEST email (parse, render, MIME) in a
   child process under ``--render-timeout``; prints the worst time with its input (a case
   that times out counts as the timeout).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import http.client
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path

from aiosmtpd.controller import Controller

PROJECT_DIR = Path(__file__).resolve().parent.parent

from callback import Sink, environment_for, machine  # noqa: E402  (bench/ is the script's folder)
from stack import Stack, free_port, wait_healthy  # noqa: E402

CORPUS_DIR = PROJECT_DIR.parent / "shared" / "corpus" / "ics"
CALLBACK_PATH = "/api/v1.0/caldav-scheduling-callback/"
ORGANIZER, ATTENDEE = "alice@example.org", "bob@example.net"


def corpus_inputs() -> list[tuple[str, bytes]]:
    found = []
    for path in sorted(CORPUS_DIR.iterdir()):
        data = path.read_bytes()
        if path.suffix == ".eml":
            message = email.message_from_bytes(data, policy=email.policy.default)
            part = next(
                (p for p in message.walk() if p.get_content_type() == "text/calendar"), None
            )
            payload = part.get_payload(decode=True) if part is not None else None
            if isinstance(payload, bytes):
                found.append((f"corpus/{path.name}", payload))
        else:
            found.append((f"corpus/{path.name}", data))
    return found


def hostile_inputs(folder: Path) -> list[tuple[str, bytes]]:
    from tests.hostile import generated_bodies

    found = [(f"hostile/{p.name}", p.read_bytes()) for p in sorted(folder.glob("*.ics"))]
    found += [(f"hostile/{name}", body) for name, body in sorted(generated_bodies().items())]
    return found


def mutated_inputs(
    corpus: list[tuple[str, bytes]], count: int, seed: int
) -> list[tuple[str, bytes]]:
    from tests.ical.mutations import MUTATIONS

    chooser = random.Random(seed)
    names = sorted(MUTATIONS)
    found = []
    for index in range(count):
        source, body = chooser.choice(corpus)
        mutation = chooser.choice(names)
        knob = chooser.randrange(2**20)
        found.append(
            (f"mutated/{index}:{mutation}({knob}):{source}", MUTATIONS[mutation](body, knob))
        )
    return found


def addressing(body: bytes) -> tuple[str, str, str]:
    """``(method, sender, recipient)`` as the CalDAV server would post this body."""
    from calendars.ical import ICalendarError, parse_itip

    try:
        itip = parse_itip(body)
    except ICalendarError:
        return "REQUEST", ORGANIZER, ATTENDEE
    method = (
        itip.method.value if itip.method and itip.method.value in ("REPLY", "CANCEL") else "REQUEST"
    )
    event = itip.primary
    organizer = event.organizer.address if event.organizer else ORGANIZER
    attendees = [a.address for e in itip.events for a in e.attendees] or [ATTENDEE]
    if method == "REPLY":
        return method, attendees[0], organizer
    return method, organizer, attendees[0]


def post(
    port: int, key: str, body: bytes, method: str, sender: str, recipient: str
) -> tuple[int, float]:
    headers = {
        "Content-Type": "text/calendar",
        "X-LS-Api-Key": key,
        "X-LS-Sender": f"mailto:{sender}",
        "X-LS-Recipient": f"mailto:{recipient}",
        "X-LS-Method": method,
        "X-LS-Is-Mailbox": "false",
    }
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    try:
        connection.request("POST", CALLBACK_PATH, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        status = response.status
    except OSError:
        status = 0
    finally:
        connection.close()
    return status, time.perf_counter() - started


# --- render, one child process at a time, killed at the timeout -----------------------------


def _render_child(pipe: Connection, bodies: list[bytes], start: int) -> None:
    sys.path.insert(0, str(PROJECT_DIR))
    import django

    django.setup()
    from calendars.ical import ICalendarError, parse_itip
    from invitations.emails import email_build

    for index in range(start, len(bodies)):
        body = bodies[index]
        started = time.perf_counter()
        outcome = "rendered"
        try:
            itip = parse_itip(body)
            event = itip.primary
            attendees = [a.address for e in itip.events for a in e.attendees] or [ATTENDEE]
            email_build(
                body=body,
                method="REQUEST",
                sender=event.organizer.address if event.organizer else ORGANIZER,
                recipient=attendees[0],
                message_id="<bench@convoke.invalid>",
                language="en",
                time_zone="Europe/Paris",
            ).message().as_bytes()
        except ICalendarError:
            outcome = "refused"
        except Exception as exc:  # the benchmark reports what older code let escape
            name = type(exc).__name__
            outcome = "not renderable" if name == "EmailNotRenderable" else f"error {name}"
        pipe.send((index, outcome, time.perf_counter() - started))
    pipe.send(None)


def render_all(bodies: list[bytes], timeout: float) -> list[tuple[str, float]]:
    results: list[tuple[str, float]] = [("", 0.0)] * len(bodies)
    start = 0
    context = multiprocessing.get_context("spawn")
    while start < len(bodies):
        parent, child = context.Pipe()
        process = context.Process(target=_render_child, args=(child, bodies, start), daemon=True)
        process.start()
        deadline = time.monotonic() + timeout + 30  # the first case pays for Django's start
        while True:
            if parent.poll(max(0.0, deadline - time.monotonic())):
                item = parent.recv()
                if item is None:
                    start = len(bodies)
                    break
                index, outcome, seconds = item
                results[index] = (outcome, seconds)
                start = index + 1
                deadline = time.monotonic() + timeout
            else:
                results[start] = (f"timeout (over {timeout:g} s)", timeout)
                start += 1
                break
        process.kill()
        process.join(10)
    return results


# --- the run ----------------------------------------------------------------------------------


def delivery_summary() -> tuple[Counter[str], Counter[str]]:
    from invitations.models import Delivery

    statuses = Counter(Delivery.objects.values_list("status", flat=True))
    reasons = Counter(
        reason.split(":")[0][:90]
        for reason in Delivery.objects.filter(status="dead").values_list("last_error", flat=True)
    )
    return statuses, reasons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutations", type=int, default=300, help="mutated corpus files")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--hostile-dir", type=Path, default=PROJECT_DIR / "tests" / "hostile")
    parser.add_argument("--web-workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument("--drain-seconds", type=float, default=120.0)
    parser.add_argument("--render-timeout", type=float, default=60.0)
    parser.add_argument("--skip-callback", action="store_true", help="only the render part")
    parser.add_argument(
        "--addressing",
        type=Path,
        help="JSON file of each input's method, sender and recipient: written when absent, "
        "read when present (so that older code, which may hang reading a body, is posted "
        "the very same callbacks)",
    )
    options = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="convoke-bench-hostile-"))
    sink = Sink()
    sink_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink_port, ready_timeout=10)
    controller.start()
    environment = environment_for(scratch, sink_port)
    environment["PROMETHEUS_MULTIPROC_DIR"] = str(scratch / "prometheus")
    os.environ.update(environment)
    sys.path.insert(0, str(PROJECT_DIR))
    import django

    django.setup()

    corpus = corpus_inputs()
    inputs = (
        corpus
        + hostile_inputs(options.hostile_dir)
        + mutated_inputs(corpus, options.mutations, options.seed)
    )
    sources = Counter(name.split("/", 1)[0] for name, _ in inputs)
    print(f"machine: {machine()}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"inputs: {len(inputs)} ({sources['corpus']} corpus, {sources['hostile']} hostile, "
        f"{sources['mutated']} mutated with seed {options.seed})"
    )

    if not options.skip_callback:
        stack = Stack(environment=environment, scratch=scratch)
        python = sys.executable
        port = free_port()
        try:
            subprocess.run(
                [python, "manage.py", "migrate", "--noinput", "-v", "0"],
                cwd=PROJECT_DIR,
                env=environment,
                check=True,
            )
            stack.spawn(
                python, "-m", "gunicorn", "calendars.wsgi:application",
                "--bind", f"127.0.0.1:{port}", "--workers", str(options.web_workers),
                "--timeout", "30", "--log-level", "warning",
                log="gunicorn.log",
            )  # fmt: skip
            stack.spawn(
                python, "-m", "celery", "-A", "calendars", "worker", "--loglevel", "WARNING",
                "--concurrency", str(options.celery_concurrency),
                "--without-gossip", "--without-mingle",
                log="worker.log",
            )  # fmt: skip
            wait_healthy(port)
            key = environment["CALDAV_INBOUND_API_KEY"]
            latencies: list[tuple[float, str, int]] = []
            statuses: Counter[int] = Counter()
            if options.addressing and options.addressing.exists():
                addresses = json.loads(options.addressing.read_text())
            else:
                addresses = {name: addressing(body) for name, body in inputs}
                if options.addressing:
                    options.addressing.write_text(json.dumps(addresses))
            for name, body in inputs:
                method, sender, recipient = addresses[name]
                status, seconds = post(port, key, body, method, sender, recipient)
                statuses[status] += 1
                latencies.append((seconds, name, status))
            ordered = sorted(seconds for seconds, _, _ in latencies)
            worst = max(latencies)
            print(
                "callback statuses: " + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
            )
            print(
                f"callback latency: p50 {statistics.median(ordered) * 1000:.0f} ms, "
                f"p99 {ordered[int(0.99 * (len(ordered) - 1))] * 1000:.0f} ms, "
                f"worst {worst[0] * 1000:.0f} ms ({worst[2]}) for {worst[1]}"
            )
            over = [(s, n) for s, n, _ in latencies if s > 1.0]
            print(f"callbacks over 1 s: {len(over)}")
            for seconds, name in sorted(over, reverse=True)[:5]:
                print(f"  {seconds:.2f} s  {name}")
            deadline = time.monotonic() + options.drain_seconds
            while time.monotonic() < deadline:
                counts, _ = delivery_summary()
                if not counts.get("pending") and not counts.get("sending"):
                    break
                time.sleep(1)
            counts, reasons = delivery_summary()
            print(
                "deliveries after draining: "
                + ", ".join(f"{status}: {n}" for status, n in sorted(counts.items()))
                + f" (emails at the sink: {sink.accepted})"
            )
            for reason, n in reasons.most_common(8):
                print(f"  dead {n}: {reason}")
        finally:
            stack.stop()
            controller.stop()

    results = render_all([body for _, body in inputs], options.render_timeout)
    outcomes = Counter(outcome.split(" (")[0] for outcome, _ in results)
    worst_index = max(range(len(results)), key=lambda i: results[i][1])
    print("render outcomes: " + ", ".join(f"{o}: {n}" for o, n in sorted(outcomes.items())))
    print(
        f"render time: worst {results[worst_index][1] * 1000:.0f} ms "
        f"({results[worst_index][0]}) for {inputs[worst_index][0]}"
    )
    slowest = sorted(range(len(results)), key=lambda i: results[i][1], reverse=True)[:5]
    for index in slowest:
        print(f"  {results[index][1] * 1000:8.0f} ms  {results[index][0]:12}  {inputs[index][0]}")


if __name__ == "__main__":
    main()
