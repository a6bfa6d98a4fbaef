"""Watch-channel lifecycle in batches: create (backfill), renew, tear down (docs/design.md 1.4).

The same engine serves one calendar (a schedule's calendar changed) and every calendar (the
``backfill_google_channels`` and ``renew_google_channels`` commands, the hourly beat task):

* work goes in batches of ``batch_size``, walked by primary key, so memory does not grow
  with the number of channels and each batch costs a constant number of queries;
* before touching a calendar, a batch *claims* it: one conditional ``UPDATE`` sets the
  channel lease of its :class:`~gcal_push.models.GoogleCalendarSyncState` row, and only
  claimed calendars are worked on. Concurrent runs (two commands, a command and the beat
  task, a schedule change) therefore never work on one calendar at once, and the partial
  unique constraints (one pending, one active channel per calendar) make a second channel
  impossible even if a lease were lost;
* Google calls run on a bounded thread pool (``concurrency``); each call builds its own
  client (httplib2 is not thread-safe);
* a channel row is written ``pending`` before ``events.watch`` is called, so that Google's
  ``sync`` message, which may arrive before the watch response, is recognised;
* renewal is make-before-break: the new channel is created and stored active while the old
  one still delivers, then the old one is set ``retiring`` (still accepted by the webhook)
  and stopped. A calendar being renewed always has a live channel.

Calendar API references: guides/push (watch, stop, expiration, no renewal in place),
v3/reference/events/watch, v3/reference/channels/stop.
"""

from gcal_push.channels.calls import CallOutcome, CallResult, Clients
from gcal_push.channels.records import (
    CHANNEL_LEASE,
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    BatchProgress,
    ChannelRunSummary,
    ProgressCallback,
)
from gcal_push.channels.runs import channels_backfill, channels_renew, channels_teardown

__all__ = [
    "CHANNEL_LEASE",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_CONCURRENCY",
    "BatchProgress",
    "CallOutcome",
    "CallResult",
    "ChannelRunSummary",
    "Clients",
    "ProgressCallback",
    "channels_backfill",
    "channels_renew",
    "channels_teardown",
]
