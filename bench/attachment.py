"""What the calendar attachment costs the callback (``calendars.ical.build_attachment``).

The web process builds each invitation's ``text/calendar`` part once, in
``invitations.prepared.prepared_dump``, from the parse the callback made. This prints, in
milliseconds of process CPU time (``time.process_time``) per message, in the fastest of
--rounds rounds:

- ``build_attachment`` and ``prepared_dump`` for --sabre distinct REQUESTs shaped like
  sabre/dav's (``bench/sabre.py``);
- ``build_attachment`` averaged over every message of the shared corpus that parses (the .ics
  files and the calendar part of each .eml), as a REQUEST;
- ``build_attachment`` on the worker's path, where the message has no parse of its own and the
  body is read again (``message._calendar is None``).

No database is touched. Usage: ``.venv/bin/python bench/attachment.py [--sabre N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from render import _setup, corpus_bodies  # noqa: E402
from sabre import sabre_request  # noqa: E402


def _per_message_ms(
    messages: Sequence[object], rounds: int, work: Callable[[object], object]
) -> float:
    """The fastest round's CPU time per message (the machine is shared: the others' load
    only ever adds time)."""
    for message in messages[:20]:  # warm-up: imports and the generated zones' cache
        work(message)
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for message in messages:
            work(message)
        best = min(best, time.process_time() - started)
    return best / len(messages) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sabre", type=int, default=1000, help="distinct sabre-sized REQUESTs")
    parser.add_argument("--rounds", type=int, default=5, help="passes over the messages")
    args = parser.parse_args()
    os.chdir(PROJECT_DIR)
    _setup()
    from calendars.ical import ICalendarError, Method, build_attachment, parse_itip
    from invitations.prepared import prepared_dump

    sabre = [parse_itip(sabre_request(i, recipient=1)[0]) for i in range(args.sabre)]
    corpus = []
    for _name, body in corpus_bodies():
        try:
            corpus.append(parse_itip(body))
        except ICalendarError:
            continue

    def attachment(message: object) -> object:
        return build_attachment(message, itip_enabled=True, method=Method.REQUEST)  # type: ignore[arg-type]

    def dump(message: object) -> object:
        return prepared_dump(message, method=Method.REQUEST)  # type: ignore[arg-type]

    unparsed = [dataclasses.replace(m, _calendar=None) for m in sabre]
    print(f"calendar attachment, CPU ms per message (fastest of {args.rounds} rounds)")
    print(f"  sabre build_attachment: {_per_message_ms(sabre, args.rounds, attachment):.3f}")
    print(f"  sabre prepared_dump:    {_per_message_ms(sabre, args.rounds, dump):.3f}")
    print(
        f"  corpus build_attachment ({len(corpus)} messages): "
        f"{_per_message_ms(corpus, args.rounds, attachment):.3f}"
    )
    print(
        "  sabre build_attachment, body read again (worker): "
        f"{_per_message_ms(unparsed, 2, attachment):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
