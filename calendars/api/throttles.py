"""Throttle of the public booking endpoint, per client address."""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView


class BookingRequestThrottle(SimpleRateThrottle):
    """``BOOKING_REQUEST_THROTTLE_RATE`` (e.g. ``30/hour``) requests per client address.

    The rate is read at request time, so a changed setting applies without a restart of the
    class (DRF reads ``DEFAULT_THROTTLE_RATES`` once at import). The client is ``REMOTE_ADDR``,
    or, behind ``NUM_PROXIES`` trusted reverse proxies (Caddy in compose.yml: 1), the address
    that many hops from the end of ``X-Forwarded-For``: the entries before it are whatever the
    client sent. The counters live in the default cache, which several web processes must
    share (system check convoke.E014).
    """

    scope = "booking_request"

    def get_rate(self) -> str | None:
        return settings.BOOKING_REQUEST_THROTTLE_RATE or None

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
