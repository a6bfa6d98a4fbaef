"""Google's push side, for the fake Google Calendar server: notifications to our webhook.

Google Calendar sends one notification per change to every live channel of the calendar,
with these headers and no body (Calendar API, guides/push):

``X-Goog-Channel-ID``, ``X-Goog-Message-Number`` (1 for the ``sync`` message, then increasing
but not consecutive), ``X-Goog-Resource-ID``, ``X-Goog-Resource-URI``,
``X-Goog-Resource-State`` (``sync`` right after the channel is created — possibly before the
``events.watch`` response reaches the client — then ``exists`` for any change), and, when
set, ``X-Goog-Channel-Token`` and ``X-Goog-Channel-Expiration`` (RFC 1123); User-Agent
``APIs-Google``, ``Content-Length: 0``.

:class:`GooglePushEmitter` listens to a :class:`~tests.fakes.google_calendar.FakeGoogleCalendar`
and does the same. Notifications are delivered at once (``immediate=True``: the ``sync`` message
is posted from inside the watch request, before its response is written) or held until the
test calls :meth:`GooglePushEmitter.flush`, which can duplicate, reorder and drop them
(or :meth:`GooglePushEmitter.flush_chaos`, which does so at random under a seed, and delays
some to a later flush);
:meth:`GooglePushEmitter.burst` posts a storm of ``exists`` notifications. Every live channel of
the calendar gets each notification, so two channels overlapping during a renewal both
deliver. Deliveries go through a *transport*: :class:`HttpTransport` posts over a real socket
(to a live server), :class:`ClientTransport` through Django's test client.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.client
import random
import threading
from collections.abc import Callable, Iterable
from email.utils import format_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from tests.fakes.google_calendar import Change, FakeChannel, FakeGoogleCalendar

WEBHOOK_PATH = "/webhooks/google-calendar/"
DELIVERY_TIMEOUT_SECONDS = 10.0


@dataclasses.dataclass(frozen=True)
class Notification:
    """One notification as Google would post it."""

    channel_id: str
    resource_id: str
    resource_uri: str
    resource_state: str
    message_number: int
    token: str | None
    expiration_ms: int

    def headers(self) -> dict[str, str]:
        expiration = dt.datetime.fromtimestamp(self.expiration_ms / 1000, tz=dt.UTC)
        headers = {
            "X-Goog-Channel-ID": self.channel_id,
            "X-Goog-Message-Number": str(self.message_number),
            "X-Goog-Resource-ID": self.resource_id,
            "X-Goog-Resource-URI": self.resource_uri,
            "X-Goog-Resource-State": self.resource_state,
            "X-Goog-Channel-Expiration": format_datetime(expiration, usegmt=True),
            "User-Agent": "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
        }
        if self.token is not None:
            headers["X-Goog-Channel-Token"] = self.token
        return headers


@dataclasses.dataclass(frozen=True)
class Delivery:
    notification: Notification
    status: int


@dataclasses.dataclass
class ChaosCounts:
    """What :meth:`GooglePushEmitter.flush_chaos` did to the notifications, in total."""

    emitted: int = 0  # notifications Google sent (held for a flush)
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0
    delayed: int = 0  # held back for a later flush (each time one was)
    reordered_batches: int = 0  # flushes whose order differed from the order of the changes


class Transport(Protocol):
    def __call__(self, headers: dict[str, str]) -> int: ...


class HttpTransport:
    """POST to a real server (``base_url`` such as pytest-django's ``live_server.url``)."""

    def __init__(self, base_url: str, path: str = WEBHOOK_PATH) -> None:
        parts = urlsplit(base_url)
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError("the push emitter posts to 127.0.0.1 only")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.path = path

    def __call__(self, headers: dict[str, str]) -> int:
        connection = http.client.HTTPConnection(
            self.host, self.port, timeout=DELIVERY_TIMEOUT_SECONDS
        )
        try:
            connection.request("POST", self.path, body=b"", headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()


class ClientTransport:
    """POST through Django's test client, in the thread that delivers. Without a ``client``,
    each delivery gets a fresh one: deliveries may come from the fake's request threads
    (changes made through the API), and a test client is not meant to be shared by threads."""

    def __init__(self, client: Any = None, path: str = WEBHOOK_PATH) -> None:
        self.client = client
        self.path = path

    def __call__(self, headers: dict[str, str]) -> int:
        from django.test import Client

        client = self.client or Client()
        response = client.post(self.path, data=b"", content_type="", headers=headers)
        return int(response.status_code)


class GooglePushEmitter:
    """Posts Google's notifications for the changes made in ``fake``."""

    def __init__(
        self,
        fake: FakeGoogleCalendar,
        transport: Transport,
        *,
        immediate: bool = True,
        seed: int = 7,
    ) -> None:
        self.fake = fake
        self.transport = transport
        self.immediate = immediate
        self.deliveries: list[Delivery] = []
        self.held: list[Notification] = []
        self._random = random.Random(seed)
        self.chaos = ChaosCounts()
        self._numbers: dict[str, int] = {}
        self._lock = threading.Lock()
        self._remove: Callable[[], None] | None = None

    # --- Life cycle ------------------------------------------------------------------------

    def start(self) -> GooglePushEmitter:
        self._remove = self.fake.listener_add(self._on_change)
        return self

    def stop(self) -> None:
        if self._remove is not None:
            self._remove()
            self._remove = None

    def __enter__(self) -> GooglePushEmitter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- Building notifications -------------------------------------------------------------

    def _number(self, channel: FakeChannel, state: str) -> int:
        with self._lock:
            if state == "sync":
                number = 1
            else:
                # Increasing but not consecutive (guides/push).
                number = self._numbers.get(channel.id, 1) + self._random.randint(1, 5)
            self._numbers[channel.id] = number
            return number

    def notification(self, channel: FakeChannel, state: str) -> Notification:
        return Notification(
            channel_id=channel.id,
            resource_id=channel.resource_id,
            resource_uri=channel.resource_uri,
            resource_state=state,
            message_number=self._number(channel, state),
            token=channel.token,
            expiration_ms=channel.expiration_ms,
        )

    def _on_change(self, change: Change) -> None:
        if change.kind == "channel_created" and change.channel_id:
            channel = self.fake.channels[change.channel_id]
            self._emit([self.notification(channel, "sync")])
        elif change.kind == "event":
            self._emit(
                [
                    self.notification(channel, "exists")
                    for channel in self.fake.live_channels(change.calendar_id)
                ]
            )

    def _emit(self, notifications: list[Notification]) -> None:
        if self.immediate:
            for notification in notifications:
                self.deliver(notification)
        else:
            with self._lock:
                self.held.extend(notifications)
                self.chaos.emitted += len(notifications)

    # --- Delivering ---------------------------------------------------------------------------

    def deliver(self, notification: Notification) -> int:
        status = self.transport(notification.headers())
        with self._lock:
            self.deliveries.append(Delivery(notification=notification, status=status))
        return status

    def flush(
        self,
        *,
        duplicate: int = 0,
        reorder: bool = False,
        drop: int = 0,
    ) -> list[Delivery]:
        """Deliver the held notifications: each ``1 + duplicate`` times, shuffled when
        ``reorder``, without the first ``drop`` of them (as Google sometimes loses some)."""
        with self._lock:
            held, self.held = self.held, []
        held = held[drop:]
        batch = [n for n in held for _ in range(1 + duplicate)]
        if reorder:
            self._random.shuffle(batch)
        start = len(self.deliveries)
        for notification in batch:
            self.deliver(notification)
        return self.deliveries[start:]

    def flush_chaos(
        self, *, drop: float = 0.0, duplicate: float = 0.0, delay: float = 0.0
    ) -> list[Delivery]:
        """Deliver the held notifications as Google's push really behaves (guides/push: not
        fully reliable): each is dropped with probability ``drop``, else held back for a
        later flush with probability ``delay``, else delivered — twice with probability
        ``duplicate``; the batch is shuffled. Deterministic under the emitter's seed; the
        totals add up in :attr:`chaos`."""
        with self._lock:
            held, self.held = self.held, []
        batch: list[Notification] = []
        kept: list[Notification] = []
        for notification in held:
            roll = self._random.random()
            if roll < drop:
                self.chaos.dropped += 1
            elif roll < drop + delay:
                self.chaos.delayed += 1
                kept.append(notification)
            else:
                batch.append(notification)
                if self._random.random() < duplicate:
                    self.chaos.duplicated += 1
                    batch.append(notification)
        ordered = list(batch)
        self._random.shuffle(batch)
        if batch != ordered:
            self.chaos.reordered_batches += 1
        with self._lock:
            self.held[:0] = kept
        start = len(self.deliveries)
        for notification in batch:
            self.deliver(notification)
        self.chaos.delivered += len(batch)
        return self.deliveries[start:]

    def burst(self, calendar_id: str, count: int) -> list[Delivery]:
        """``count`` ``exists`` notifications, round-robin over the calendar's live channels."""
        channels = self.fake.live_channels(calendar_id)
        if not channels:
            raise LookupError(f"no live channel on {calendar_id}")
        start = len(self.deliveries)
        for index in range(count):
            self.deliver(self.notification(channels[index % len(channels)], "exists"))
        return self.deliveries[start:]

    def states(self, deliveries: Iterable[Delivery] | None = None) -> list[tuple[str, str, int]]:
        """(channel id, resource state, status) of deliveries, in order."""
        chosen = self.deliveries if deliveries is None else deliveries
        return [
            (d.notification.channel_id, d.notification.resource_state, d.status) for d in chosen
        ]
