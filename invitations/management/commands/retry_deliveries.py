"""``manage.py retry_deliveries``: send failed or dead deliveries again, now.

    manage.py retry_deliveries                 # every failed delivery waiting for a retry
    manage.py retry_deliveries --dead          # every dead delivery (dead-letter queue)
    manage.py retry_deliveries --id 12 --id 15 # these deliveries (failed, dead or pending)
    manage.py retry_deliveries --dead --since 2026-11-20T08:00 --dry-run

Prints one line per delivery and a summary; exits non-zero when an asked-for id does not
exist or cannot be retried.
"""

from __future__ import annotations

import datetime as dt
from argparse import ArgumentParser, ArgumentTypeError
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import dateparse, timezone

from invitations.services import deliveries_retry


def _since(value: str) -> dt.datetime:
    problem = f"{value!r} is not a date (2026-11-20) or date-time (2026-11-20T08:00)"
    try:
        parsed = dateparse.parse_datetime(value)
        day = dateparse.parse_date(value) if parsed is None else None
    except ValueError:
        raise ArgumentTypeError(problem) from None
    if parsed is None:
        if day is None:
            raise ArgumentTypeError(problem)
        parsed = dt.datetime.combine(day, dt.time.min)
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


class Command(BaseCommand):
    help = "Send failed (or, with --dead, dead) invitation deliveries again now."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--dead", action="store_true", help="Retry dead deliveries instead of failed ones."
        )
        parser.add_argument(
            "--id",
            dest="ids",
            action="append",
            type=int,
            metavar="ID",
            help="Retry this delivery (repeatable); other selectors then only filter.",
        )
        parser.add_argument(
            "--since",
            type=_since,
            help="Only deliveries created at or after this date or date-time.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Show what would be retried; change nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        ids: list[int] | None = options["ids"]
        dry_run: bool = options["dry_run"]
        items = deliveries_retry(
            ids=ids, dead=options["dead"], since=options["since"], dry_run=dry_run
        )
        for item in items:
            if item.retried:
                verb = "retrying"
            elif item.note == "dry run":
                verb = "would retry"
            else:
                verb = "skipped"
            line = (
                f"{verb} delivery {item.delivery_id}: was {item.previous_status} after "
                f"{item.attempts} attempt(s)"
            )
            if item.last_error:
                line += f"; last error: {item.last_error}"
            if item.note and item.note != "dry run":
                line += f" ({item.note})"
            self.stdout.write(line)

        retried = sum(item.retried for item in items)
        problems = [item for item in items if not item.retried and item.note != "dry run"]
        missing = sorted(set(ids or []) - {item.delivery_id for item in items})
        for pk in missing:
            self.stderr.write(f"delivery {pk} does not exist (or was created before --since)")
        if dry_run:
            would = sum(item.note == "dry run" for item in items)
            self.stdout.write(f"Dry run: {would} delivery(ies) would be retried; nothing changed.")
        else:
            self.stdout.write(f"{retried} delivery(ies) queued for sending.")
        if ids and (missing or problems):
            raise CommandError(
                f"{len(missing) + len(problems)} of the requested deliveries were not retried."
            )
