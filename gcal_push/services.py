"""Watch channels of default Google calendars (DESIGN.md 1.4): the interface the booking code calls.

A channel exists exactly for each connected Google calendar that is some schedule's calendar.
:func:`calendars.services.schedule_update` calls :func:`calendar_watch_start` for a calendar
that became a schedule's calendar and :func:`calendar_watch_stop` for one that stopped being
one; the Google account services call :func:`calendar_watch_stop` when an account is
disconnected or its grant revoked. Both are called after the change committed.

For now these only record the call in the log: channel creation, renewal and the webhook are
built with the push notifications, which replace this module.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def calendar_watch_start(*, calendar_id: int) -> None:
    """Make sure a watch channel exists for this calendar (no-op until push is built)."""
    logger.info("google watch start requested calendar=%s (not implemented yet)", calendar_id)


def calendar_watch_stop(*, calendar_id: int) -> None:
    """Stop this calendar's watch channels (no-op until push is built)."""
    logger.info("google watch stop requested calendar=%s (not implemented yet)", calendar_id)
