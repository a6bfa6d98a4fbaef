"""How fast Convoke turns iTIP bodies into emails (``make bench-render``).

For every message of the shared corpus that parses (the .ics files and the calendar part of
each .eml), builds the complete email with ``invitations.emails.email_build`` and serializes
it (``message().as_bytes()``): parse + render + MIME build, as a delivery does. Each file is
built as a REQUEST, a CANCEL and a REPLY in each of the four languages, for --rounds rounds.
Prints emails rendered per second per core (emails divided by the CPU seconds the process
used), the median and p95 time per email, and the slowest files.

With --processes P, P processes share the files; the per-core figure then divides by the CPU
time of all of them. No database is touched: language and zone are passed in.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import email.policy
import email.utils
import multiprocessing
import os
import platform
import statistics
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
CORPUS_DIR = PROJECT_DIR.parent / "shared" / "corpus" / "ics"
LANGUAGES = {"en": "Asia/Kolkata", "fr": "Europe/Paris", "de": "America/Sao_Paulo", "nl": "UTC"}
METHODS = ("REQUEST", "CANCEL", "REPLY")


def _setup() -> None:
    sys.path.insert(0, str(PROJECT_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calendars.settings")
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("CELERY_FILESYSTEM_DIR", str(PROJECT_DIR / "var" / "bench-render-celery"))
    import django

    django.setup()


def corpus_bodies() -> list[tuple[str, bytes]]:
    bodies = []
    for path in sorted(CORPUS_DIR.iterdir()):
        data = path.read_bytes()
        if path.suffix == ".eml":
            message = email.message_from_bytes(data, policy=email.policy.default)
            part = next(
                (p for p in message.walk() if p.get_content_type() == "text/calendar"), None
            )
            payload = part.get_payload(decode=True) if part is not None else None
            if not isinstance(payload, bytes):
                continue
            bodies.append((path.name, payload))
        else:
            bodies.append((path.name, data))
    return bodies


def _is_address(value: str) -> bool:
    return value.count("@") == 1 and email.utils.parseaddr(value)[1] == value


def _people(body: bytes) -> tuple[str, str]:
    from calendars.ical import parse_itip

    event = parse_itip(body).primary
    organizer = event.organizer.address if event.organizer else ""
    if not _is_address(organizer):
        organizer = "organizer@example.org"
    attendee = next(
        (a.address for a in event.attendees if _is_address(a.address) and a.address != organizer),
        "guest@example.net",
    )
    return organizer, attendee


def _usable(bodies: list[tuple[str, bytes]]) -> list[tuple[str, bytes, str, str]]:
    from calendars.ical import ICalendarError

    usable = []
    for name, body in bodies:
        try:
            organizer, attendee = _people(body)
        except ICalendarError:
            continue
        usable.append((name, body, organizer, attendee))
    return usable


def _build_all(job: tuple[list[tuple[str, bytes, str, str]], int]) -> dict:
    files, rounds = job
    _setup()
    from invitations.emails import email_build

    per_file: dict[str, list[float]] = {}
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    for _ in range(rounds):
        for name, body, organizer, attendee in files:
            for method in METHODS:
                sender, recipient = (
                    (attendee, organizer) if method == "REPLY" else (organizer, attendee)
                )
                for language, zone in LANGUAGES.items():
                    started = time.perf_counter()
                    mail = email_build(
                        body=body,
                        method=method,
                        sender=sender,
                        recipient=recipient,
                        message_id=f"<{method}.{language}@bench.invalid>",
                        language=language,
                        time_zone=zone,
                    )
                    mail.message().as_bytes()
                    per_file.setdefault(name, []).append(time.perf_counter() - started)
    return {
        "cpu": time.process_time() - cpu_start,
        "wall": time.perf_counter() - wall_start,
        "per_file": per_file,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the corpus")
    parser.add_argument("--processes", type=int, default=1, help="processes sharing the files")
    parser.add_argument("--top", type=int, default=5, help="slowest files to list")
    args = parser.parse_args()
    if not CORPUS_DIR.is_dir():
        print(f"the shared corpus is absent (expected at {CORPUS_DIR})", file=sys.stderr)
        return 2
    _setup()
    files = _usable(corpus_bodies())
    _build_all((files[:3], 1))  # warm-up: imports, template loading, caches
    chunks = [files[i :: args.processes] for i in range(args.processes)]
    wall_start = time.perf_counter()
    if args.processes == 1:
        results = [_build_all((files, args.rounds))]
    else:
        with multiprocessing.get_context("fork").Pool(args.processes) as pool:
            results = pool.map(_build_all, [(chunk, args.rounds) for chunk in chunks])
    wall = time.perf_counter() - wall_start
    per_file: dict[str, list[float]] = {}
    for result in results:
        per_file.update(result["per_file"])
    timings = [t for values in per_file.values() for t in values]
    cpu = sum(r["cpu"] for r in results)
    count = len(timings)
    print("Convoke email rendering (parse + render + MIME build + serialize)")
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.machine()}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )
    with contextlib.suppress(OSError):
        print(f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"corpus: {len(files)} messages that parse; each as {', '.join(METHODS)} in "
        f"{len(LANGUAGES)} languages; {args.rounds} rounds; {args.processes} process(es)"
    )
    print(f"emails built: {count} in {wall:.1f} s wall, {cpu:.1f} s CPU")
    print(f"emails per second per core: {count / cpu:.1f}")
    print(f"emails per second (wall, all processes): {count / wall:.1f}")
    print(
        f"per email: median {statistics.median(timings) * 1000:.1f} ms, "
        f"p95 {statistics.quantiles(timings, n=20)[18] * 1000:.1f} ms, "
        f"max {max(timings) * 1000:.1f} ms"
    )
    slowest = sorted(per_file.items(), key=lambda item: -statistics.mean(item[1]))
    sizes = {name: len(body) for name, body, _, _ in files}
    small = [t for name, values in per_file.items() if sizes[name] < 16 * 1024 for t in values]
    if small:
        print(
            f"messages under 16 KiB (what a CalDAV server sends): {len(small)} emails, "
            f"{len(small) / sum(small):.1f} per second (their own build time, one process)"
        )
    name, values = slowest[0]
    print(
        f"slowest file: {name} ({statistics.mean(values) * 1000:.1f} ms per email, "
        f"{sizes[name] / 1024:.0f} KiB)"
    )
    for name, values in slowest[1 : args.top]:
        print(
            f"  then: {name} ({statistics.mean(values) * 1000:.1f} ms, "
            f"{sizes[name] / 1024:.0f} KiB)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
