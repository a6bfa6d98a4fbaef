"""How fast Convoke turns iTIP messages into emails (``make bench-render``).

What a delivery pays before it talks to the mail server: the worker reads the parse the
callback stored (``invitations.prepared``), renders the email with
``invitations.emails.email_build`` and writes its bytes (``invitations.mime.email_bytes``).
Two sets of messages:

- sabre-sized: --sabre distinct REQUESTs shaped like sabre/dav's (``bench/sabre.py``);
- the corpus: every message of the shared corpus that parses (the .ics files and the calendar
  part of each .eml), each as a REQUEST, a CANCEL and a REPLY.

Each is built in each of the four languages, for --rounds rounds. The parse and the stored
form are made first, untimed (the callback's work), and also timed on their own. Prints
emails per second per core (emails divided by the CPU seconds of the process), the median
and p95 time per email, the figure when the body is parsed again (an attempt without a
stored parse), and the slowest files.

With --processes P, P processes share the messages; the per-core figure then divides by the
CPU time of all of them. No database is touched: language and zone are passed in.
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


def _jobs(files: list[tuple[str, bytes, str, str]]) -> list[tuple[str, bytes, str, str, str]]:
    jobs = []
    for name, body, organizer, attendee in files:
        for method in METHODS:
            sender, recipient = (
                (attendee, organizer) if method == "REPLY" else (organizer, attendee)
            )
            jobs.append((name, body, method, sender, recipient))
    return jobs


def _build_all(job: tuple[list[tuple[str, bytes, str, str, str]], int, bool]) -> dict:
    jobs, rounds, reparse = job
    _setup()
    from calendars.ical import Method, parse_itip
    from invitations.emails import email_build
    from invitations.mime import email_bytes
    from invitations.prepared import prepared_dump, prepared_load

    stored: dict[tuple[str, str], bytes | None] = {}
    prepare_started = time.process_time()
    for name, body, method, _sender, _recipient in jobs:
        stored[(name, method)] = prepared_dump(parse_itip(body), method=Method(method))
    prepare_cpu = time.process_time() - prepare_started
    per_file: dict[str, list[float]] = {}
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    for _ in range(rounds):
        for name, body, method, sender, recipient in jobs:
            for language, zone in LANGUAGES.items():
                started = time.perf_counter()
                prepared = None if reparse else prepared_load(stored[(name, method)])
                mail = email_build(
                    body=body,
                    method=method,
                    sender=sender,
                    recipient=recipient,
                    message_id=f"<{method}.{language}@bench.invalid>",
                    language=language,
                    time_zone=zone,
                    prepared=prepared,
                    users={},
                )
                email_bytes(mail)
                per_file.setdefault(name, []).append(time.perf_counter() - started)
    return {
        "cpu": time.process_time() - cpu_start,
        "wall": time.perf_counter() - wall_start,
        "per_file": per_file,
        "prepare_cpu": prepare_cpu,
        "prepared": len(jobs),
        "kept": sum(1 for value in stored.values() if value is not None),
    }


def _run(jobs: list, rounds: int, processes: int, reparse: bool) -> tuple[list[dict], float]:
    chunks = [jobs[i::processes] for i in range(processes)]
    wall_start = time.perf_counter()
    if processes == 1:
        results = [_build_all((jobs, rounds, reparse))]
    else:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            results = pool.map(_build_all, [(chunk, rounds, reparse) for chunk in chunks])
    return results, time.perf_counter() - wall_start


def _report(label: str, results: list[dict], wall: float, *, slowest: int = 0) -> None:
    per_file: dict[str, list[float]] = {}
    for result in results:
        for name, values in result["per_file"].items():
            per_file.setdefault(name, []).extend(values)
    timings = [t for values in per_file.values() for t in values]
    cpu = sum(r["cpu"] for r in results)
    prepared = sum(r["prepared"] for r in results)
    kept = sum(r["kept"] for r in results)
    prepare_cpu = sum(r["prepare_cpu"] for r in results)
    print(f"\n{label}")
    print(f"  emails built: {len(timings)} in {wall:.1f} s wall, {cpu:.1f} s CPU")
    print(f"  emails per second per core: {len(timings) / cpu:.1f}")
    print(
        f"  per email: median {statistics.median(timings) * 1000:.2f} ms, "
        f"p95 {statistics.quantiles(timings, n=20)[18] * 1000:.2f} ms, "
        f"max {max(timings) * 1000:.1f} ms"
    )
    print(
        f"  the callback's parse and stored form: {prepare_cpu / prepared * 1000:.2f} ms per "
        f"message ({kept} of {prepared} kept; the others are parsed when rendered)"
    )
    if slowest:
        ranked = sorted(per_file.items(), key=lambda item: -statistics.mean(item[1]))
        for name, values in ranked[:slowest]:
            print(f"  slow: {name} ({statistics.mean(values) * 1000:.1f} ms per email)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over the messages")
    parser.add_argument("--processes", type=int, default=1, help="processes sharing them")
    parser.add_argument("--sabre", type=int, default=300, help="distinct sabre-sized REQUESTs")
    parser.add_argument("--top", type=int, default=5, help="slowest corpus files to list")
    args = parser.parse_args()
    if not CORPUS_DIR.is_dir():
        print(f"the shared corpus is absent (expected at {CORPUS_DIR})", file=sys.stderr)
        return 2
    _setup()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sabre import sabre_request

    sabre = []
    for index in range(args.sabre):
        body, sender, recipient = sabre_request(index, recipient=index)
        sabre.append((f"sabre-{index}", body, "REQUEST", sender, recipient))
    corpus = _jobs(_usable(corpus_bodies()))
    _build_all((sabre[:3] + corpus[:3], 1, False))  # warm-up: imports, templates, caches
    print("Convoke email rendering: from the stored parse to the email's bytes")
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.machine()}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )
    print(
        f"{args.rounds} rounds, {args.processes} process(es), each message in "
        f"{len(LANGUAGES)} languages"
    )
    results, wall = _run(sabre, args.rounds, args.processes, reparse=False)
    _report(f"sabre-sized: {len(sabre)} distinct REQUESTs", results, wall)
    results, wall = _run(corpus, args.rounds, args.processes, reparse=False)
    _report(
        f"corpus: {len(corpus) // len(METHODS)} messages as {', '.join(METHODS)}",
        results,
        wall,
        slowest=args.top,
    )
    results, wall = _run(sabre, 1, args.processes, reparse=True)
    _report(
        "sabre-sized, parsing the body again (an attempt without a stored parse)", results, wall
    )
    with contextlib.suppress(OSError):
        print(f"\nload average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
