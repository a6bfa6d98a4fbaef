"""What reading a callback's body costs the web process: ``parse_itip`` and ``prepared_dump``.

The scheduling callback parses every body (``calendars.ical.parse_itip``) and keeps the parse
and the calendar attachment for the worker (``invitations.prepared.prepared_dump``). This
prints, in milliseconds of process CPU time (``time.process_time``) per message, the fastest
of --rounds rounds of each, measured separately:

- over --sabre distinct REQUESTs shaped like sabre/dav's (``bench/sabre.py``, ``recipient=1``);
- averaged over every body of the shared corpus (``../shared/corpus``) that parses.

``--project DIR`` measures another checkout of Convoke (say, ``main`` exported to a temporary
directory) with this script and the same corpus, so that two versions are compared back to
back. No database is touched. Usage:
``.venv/bin/python bench/parse.py [--sabre N] [--rounds R] [--project DIR]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sabre", type=int, default=2000, help="distinct sabre-shaped REQUESTs")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the messages")
    parser.add_argument("--project", type=Path, default=PROJECT_DIR, help="Convoke to measure")
    args = parser.parse_args()
    project = args.project.resolve()
    os.chdir(project)
    sys.path.insert(0, str(project))
    sys.path.insert(1, str(BENCH_DIR))  # sabre.py and render.py, from this checkout
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calendars.settings")
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("CELERY_FILESYSTEM_DIR", str(PROJECT_DIR / "var" / "bench-parse-celery"))
    import django

    django.setup()
    from attachment import _per_message_ms  # the same fastest-round measure
    from render import corpus_bodies
    from sabre import sabre_request

    from calendars.ical import ICalendarError, Method, parse_itip
    from invitations.prepared import prepared_dump

    sabre_bodies = [sabre_request(i, recipient=1)[0] for i in range(args.sabre)]
    corpus_all = [body for _name, body in corpus_bodies()]
    corpus_parsed, corpus_ok = [], []
    for body in corpus_all:
        try:
            corpus_parsed.append(parse_itip(body))
            corpus_ok.append(body)
        except ICalendarError:
            continue
    sabre_parsed = [parse_itip(body) for body in sabre_bodies]

    def parse(body: object) -> object:
        return parse_itip(body)  # type: ignore[arg-type]

    def dump(message: object) -> object:
        return prepared_dump(message, method=Method.REQUEST)  # type: ignore[arg-type]

    print(f"{project}: CPU ms per message (fastest of {args.rounds} rounds)")
    print(f"  sabre  parse_itip:    {_per_message_ms(sabre_bodies, args.rounds, parse):.3f}")
    print(f"  sabre  prepared_dump: {_per_message_ms(sabre_parsed, args.rounds, dump):.3f}")
    print(
        f"  corpus parse_itip ({len(corpus_ok)} bodies):    "
        f"{_per_message_ms(corpus_ok, args.rounds, parse):.3f}"
    )
    print(
        f"  corpus prepared_dump ({len(corpus_parsed)} bodies): "
        f"{_per_message_ms(corpus_parsed, args.rounds, dump):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
