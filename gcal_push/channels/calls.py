"""Google calls of the channel runs: watch and stop on a bounded pool of threads.

Each thread gets its own clients (``httplib2`` is not thread-safe, and building a client
costs more than a call to a fake), and each outcome becomes a :class:`CallResult` that the
batch records (Calendar API: v3/reference/events/watch, v3/reference/channels/stop).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum

from django.conf import settings
from django.db import connection

from calendars.models import GoogleAccount
from calendars.providers import ProviderError, TransientProviderError, google
from gcal_push.credentials import google_client


class CallOutcome(StrEnum):
    OK = "ok"
    UNSUPPORTED = "unsupported"  # pushNotSupportedForRequestedResource: permanent
    REVOKED = "revoked"  # invalid_grant: the account must reconnect
    GONE = "gone"  # channels.stop answered 404: already stopped or expired
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class CallResult:
    outcome: CallOutcome
    channel: google.Channel | None = None
    reason: str = ""
    # A failure worth trying again later (rate limit, 5xx, timeout).
    transient: bool = False


class Clients:
    """Google clients for one bounded run: one per account and thread, since a client (its
    ``httplib2.Http``) must never be shared between threads, and building one costs more than
    a call to the fake."""

    def __init__(self) -> None:
        self._local = threading.local()

    def for_account(self, account: GoogleAccount) -> google.GoogleCalendarClient:
        cache: dict[int, google.GoogleCalendarClient] = getattr(self._local, "clients", None) or {}
        self._local.clients = cache
        client = cache.get(account.pk)
        if client is None:
            client = cache[account.pk] = google_client(account)
        return client


def run_bounded[T, R](
    jobs: Sequence[T], call: Callable[[T, Clients], R], *, concurrency: int
) -> list[R]:
    """``call`` on every job with at most ``concurrency`` at once; results in job order.

    Each thread takes every n-th job in turn and, when done, gives up the database
    connection it may have opened (token refreshes and call metrics write from there):
    one connection per thread and batch, not one per call.
    """
    clients = Clients()
    if concurrency <= 1 or len(jobs) <= 1:
        return [call(job, clients) for job in jobs]
    threads = min(concurrency, len(jobs))
    results: list[R | None] = [None] * len(jobs)

    def run_share(offset: int) -> None:
        try:
            for index in range(offset, len(jobs), threads):
                results[index] = call(jobs[index], clients)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for future in [pool.submit(run_share, offset) for offset in range(threads)]:
            future.result()
    return [result for result in results if result is not None]


def call_classify(exc: ProviderError) -> CallResult:
    if isinstance(exc, google.PushNotSupported):
        return CallResult(CallOutcome.UNSUPPORTED, reason=exc.reason)
    if isinstance(exc, google.AuthRevoked):
        return CallResult(CallOutcome.REVOKED, reason=exc.reason)
    return CallResult(
        CallOutcome.FAILED, reason=exc.reason, transient=isinstance(exc, TransientProviderError)
    )


@dataclasses.dataclass(frozen=True)
class WatchJob:
    account: GoogleAccount
    remote_id: str
    channel_id: str
    token: str


def watch(job: WatchJob, clients: Clients) -> CallResult:
    address = settings.GOOGLE_WEBHOOK_URL
    if not address:
        return CallResult(CallOutcome.FAILED, reason="GOOGLE_WEBHOOK_URL unset")
    try:
        client = clients.for_account(job.account)
        channel = client.events_watch(
            calendar_id=job.remote_id,
            channel_id=job.channel_id,
            address=address,
            token=job.token,
            ttl_seconds=settings.GOOGLE_CHANNEL_TTL_SECONDS,
        )
    except ProviderError as exc:
        return call_classify(exc)
    if not channel.resource_id:
        return CallResult(CallOutcome.FAILED, reason="watch response without resourceId")
    return CallResult(CallOutcome.OK, channel=channel)


@dataclasses.dataclass(frozen=True)
class StopJob:
    account: GoogleAccount | None
    channel_id: str
    resource_id: str


def stop(job: StopJob, clients: Clients) -> CallResult:
    if not job.resource_id:
        # Never confirmed by Google (the watch failed or its answer was lost): nothing
        # we could stop; the webhook ignores it once stopped here.
        return CallResult(CallOutcome.GONE)
    if job.account is None:
        return CallResult(CallOutcome.REVOKED, reason="no Google account")
    try:
        client = clients.for_account(job.account)
        client.channel_stop(channel_id=job.channel_id, resource_id=job.resource_id)
    except google.NotFound:
        return CallResult(CallOutcome.GONE)  # unknown or already stopped: done (guides/push)
    except ProviderError as exc:
        return call_classify(exc)
    return CallResult(CallOutcome.OK)
