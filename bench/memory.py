"""Memory of the web and worker code over many callbacks, in one process (bench/memory.py).

Issue 14's question: the RSS of the web and worker processes grows about 0.25 to 0.3 MiB a
minute over a 10-minute run at 150 callbacks/s; is it something Convoke keeps? This runs
``--rounds`` rounds of ``--per-round`` sabre-shaped callbacks (``bench/sabre.py``) through
``calendars.wsgi.application`` (WSGI environs built as ``bench/engine_cpu.py`` builds them)
and then ``deliveries_send`` over them to ``bench/sink.py``, against PostgreSQL and Redis,
and prints after each round (after ``gc.collect()``), one JSON line:

- ``rss``, ``anon``, ``file``: ``/proc/self/smaps_rollup`` in KiB (anonymous memory, and
  file-backed pages: the libraries and prometheus_client's multiprocess files);
- ``blocks``: ``sys.getallocatedblocks()`` (Python objects and buffers alive now);
  ``objects``: how many objects the garbage collector tracks;
- ``heap``, ``used``, ``free``, ``mmap``: glibc's ``mallinfo2()`` in KiB (the main heap and
  its arenas, what is allocated in them, what is free in them, and large blocks mapped
  apart): ``used`` flat while ``heap`` steps up is the allocator keeping freed memory, not
  a leak.

``--no-collect`` leaves the collector to its thresholds (as a server does) and adds its
collections per generation: what the gunicorn soak below shows.

What it found (issue 14, 48,000 callbacks and their emails, collected after each round):
flat. RSS 141,988 -> 141,684 KiB from the second round to the last, glibc in use 27,610 ->
27,630 KiB, Python blocks +0.03 per callback (psycopg's lru_cache of 128 parsed statements
filling: bounded). The growth the 10-minute runs see is cyclic garbage waiting for the
collector's oldest generation: every callback leaves about 46 objects in reference cycles
(Django's request: ``WSGIRequest`` with ``AuthenticationMiddleware``'s lazy user closure,
the messages storages, the session store, and the body's ``BytesIO``), found with
``gc.DEBUG_SAVEALL``; the few that outlive two young collections (the request still running)
reach the oldest generation, which CPython collects in full only once the objects promoted
since the last full collection are a quarter of the ~160,000 a Django process holds. In one
gunicorn sync worker (a ``post_request`` hook reading the same figures every 1,000
requests), 15,000 callbacks: without collecting, anonymous memory +1.8 MiB and Python
blocks +27,300 (1.8 a request), with no full collection since start-up; with
``gc.collect()`` every 1,000 requests, +36 KiB and +87 blocks over 10,000. Bounded
(a sawtooth whose first tooth is about 24,000 requests per process, longer than a 10-minute
run at 150/s over three web workers), not a leak.

At the end: what ``malloc_trim(0)`` gives back, the object types whose count grew since the
second round and, with ``--trace``, tracemalloc's largest growths between the third round
and the last (by line). ``--database`` is dropped and created: give a scratch name.
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import gc
import json
import logging
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))
sys.path.insert(0, str(BENCH_DIR))

import engine_cpu  # noqa: E402  (bench/ is the script's folder)
from sabre import sabre_request  # noqa: E402


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


LIBC = ctypes.CDLL("libc.so.6")
LIBC.mallinfo2.restype = _MallInfo2


def _malloc() -> dict[str, int]:
    info = LIBC.mallinfo2()
    return {
        "heap": info.arena // 1024,
        "used": info.uordblks // 1024,
        "free": info.fordblks // 1024,
        "mmap": info.hblkhd // 1024,
    }


def _smaps() -> dict[str, int]:
    found: dict[str, int] = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines():
        words = line.split()
        if len(words) == 3 and words[2] == "kB":
            found[words[0].rstrip(":")] = int(words[1])
    return {
        "rss": found["Rss"],
        "anon": found["Anonymous"],
        "file": found["Rss"] - found["Anonymous"],
    }


def _types() -> collections.Counter[str]:
    return collections.Counter(type(item).__name__ for item in gc.get_objects())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--per-round", type=int, default=2000)
    parser.add_argument("--trace", type=int, default=0, help="tracemalloc frames (0: off)")
    parser.add_argument("--no-collect", dest="collect", action="store_false")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:55432")
    parser.add_argument("--database", default="convoke_memory")
    parser.add_argument("--redis", default="redis://127.0.0.1:6390/4")
    options = parser.parse_args()

    sink = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / "sink.py")], stdout=subprocess.PIPE, text=True
    )
    assert sink.stdout is not None
    smtp_port = int(sink.stdout.readline().split()[1])
    try:
        engine_cpu._environment(
            postgres=options.postgres,
            database=options.database,
            redis=options.redis,
            smtp_port=smtp_port,
        )
        import psycopg

        with psycopg.connect(f"{options.postgres}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {options.database} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {options.database}")
        import django

        django.setup()
        import redis
        from django.core.management import call_command

        from calendars.wsgi import application
        from invitations.services import deliveries_send

        call_command("migrate", verbosity=0)
        redis.Redis.from_url(options.redis).flushdb()
        logging.disable(logging.INFO)  # one line per batch: nothing kept, only noise

        def callback(index: int) -> None:
            body, sender, recipient = sabre_request(index, recipient=1)
            status: list[str] = []
            answer = application(
                engine_cpu._environ(body, sender, recipient),
                lambda line, *_: status.append(line),
            )
            b"".join(answer)
            answer.close()
            assert status[0].startswith("202"), status

        done = 0
        types_before: collections.Counter[str] = collections.Counter()
        snapshot: Any = None
        for round_ in range(options.rounds):
            started = time.process_time()
            for index in range(done, done + options.per_round):
                callback(index)
            done += options.per_round
            summary = deliveries_send(linger=0.0, renudge=False)
            assert summary.outcomes.get("sent") == options.per_round, summary
            if options.collect:
                gc.collect()
            row: dict[str, Any] = {
                "round": round_,
                "callbacks": done,
                "cpu_s": round(time.process_time() - started, 1),
                **_smaps(),
                "blocks": sys.getallocatedblocks(),
                "interned": sys.getunicodeinternedsize(),
                "objects": len(gc.get_objects()),
                **_malloc(),
                "collections": [stats["collections"] for stats in gc.get_stats()],
            }
            if tracemalloc.is_tracing():
                row["traced"] = tracemalloc.get_traced_memory()[0] // 1024
            print(json.dumps(row), flush=True)
            if round_ == 1:
                types_before = _types()
                if options.trace:
                    tracemalloc.start(options.trace)
            elif round_ == 2 and options.trace:
                snapshot = tracemalloc.take_snapshot()
        grown = _types() - types_before
        print("object types grown since round 1:", grown.most_common(15))
        if snapshot is not None:
            ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
            later = tracemalloc.take_snapshot().filter_traces(ignore)
            for stat in later.compare_to(snapshot.filter_traces(ignore), "lineno")[:15]:
                print(stat)
            tracemalloc.stop()
        LIBC.malloc_trim(0)
        print("after malloc_trim(0):", json.dumps({**_smaps(), **_malloc()}))
    finally:
        sink.terminate()
        sink.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
