"""What the two channel commands share: options, progress display, summary, exit status."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gcal_push.channels import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    BatchProgress,
    ChannelRunSummary,
)

MAX_BATCH_SIZE = 5000
MAX_CONCURRENCY = 64
BAR_WIDTH = 30


def bounded_int(low: int, high: int) -> Any:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return number

    return parse


class ChannelCommand(BaseCommand):
    """A command over every channel: batches, bounded concurrency, progress, summary.

    Safe to run concurrently with itself, the other channel command and the beat task: each
    batch claims its calendars in the database before touching them.
    """

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Change nothing and call nothing; print what would be done.",
        )
        parser.add_argument(
            "--batch-size",
            type=bounded_int(1, MAX_BATCH_SIZE),
            default=DEFAULT_BATCH_SIZE,
            help=f"Channels per batch (default {DEFAULT_BATCH_SIZE}).",
        )
        parser.add_argument(
            "--concurrency",
            type=bounded_int(1, MAX_CONCURRENCY),
            default=DEFAULT_CONCURRENCY,
            help=f"Google calls at once (default {DEFAULT_CONCURRENCY}).",
        )

    def progress(self, event: BatchProgress) -> None:
        for line in event.lines:
            self.stdout.write(line)
        counts = _counts(event.summary)
        if self.stdout.isatty():
            filled = BAR_WIDTH * event.done // max(event.total, event.done, 1)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            self.stdout.write(f"\r[{bar}] {event.done}/{event.total} {counts}", ending="")
            self.stdout.flush()
        else:
            self.stdout.write(f"{event.done}/{event.total} done: {counts}")

    def finish(self, summary: ChannelRunSummary) -> None:
        if self.stdout.isatty():
            self.stdout.write("")
        title = "Summary (dry run, nothing changed)" if summary.dry_run else "Summary"
        self.stdout.write(f"{title}: {_counts(summary)}")
        for calendar_id, reason in summary.failures:
            self.stderr.write(f"failed: calendar {calendar_id}: {reason}")
        if summary.failed > len(summary.failures):
            self.stderr.write(f"... and {summary.failed - len(summary.failures)} more failures")
        if summary.failed:
            raise CommandError(
                f"{summary.failed} channel operation(s) failed; run again to retry them",
                returncode=1,
            )


def _counts(summary: ChannelRunSummary) -> str:
    return ", ".join(f"{name} {value}" for name, value in summary.as_dict().items())
