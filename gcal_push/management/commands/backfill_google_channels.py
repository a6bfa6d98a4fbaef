"""``manage.py backfill_google_channels``: a watch channel for every calendar that lacks one.

Every connected Google calendar that is some active schedule's calendar gets a channel
(docs/design.md 1.4). Idempotent: calendars with a channel are left alone.
"""

from __future__ import annotations

from typing import Any

from gcal_push.channels import channels_backfill
from gcal_push.management.progress import ChannelCommand


class Command(ChannelCommand):
    help = "Create Google watch channels for default calendars that lack one."

    def handle(self, *args: Any, **options: Any) -> None:
        summary = channels_backfill(
            dry_run=options["dry_run"],
            batch_size=options["batch_size"],
            concurrency=options["concurrency"],
            progress=self.progress,
        )
        self.finish(summary)
