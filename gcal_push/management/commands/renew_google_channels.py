"""``manage.py renew_google_channels [--within HOURS]``: replace channels before they expire.

Google cannot extend a channel: a new channel is created and stored, then the old one is set
retiring and stopped (make-before-break), so a renewed calendar never lacks a live channel.
Retiring channels whose stop failed before are stopped again. The beat task runs the same
renewal hourly with a 24-hour window.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
from typing import Any

from django.core.management.base import CommandParser

from gcal_push.channels import channels_renew
from gcal_push.management.progress import ChannelCommand

MAX_WITHIN_HOURS = 24 * 31


def hours(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of hours") from None
    if not math.isfinite(number) or not 0 < number <= MAX_WITHIN_HOURS:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_WITHIN_HOURS}")
    return number


class Command(ChannelCommand):
    help = "Renew Google watch channels that expire within --within hours (default 24)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--within",
            type=hours,
            default=24.0,
            metavar="HOURS",
            help="Renew the channels expiring within this many hours (default 24).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        summary = channels_renew(
            within=dt.timedelta(hours=options["within"]),
            dry_run=options["dry_run"],
            batch_size=options["batch_size"],
            concurrency=options["concurrency"],
            progress=self.progress,
        )
        self.finish(summary)
