"""Throttle of the public booking endpoint, per client address."""

from __future__ import annotations

from django.conf import settings
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView


class BookingRequestThrottle(SimpleRateThrottle):
    """``BOOKING_REQUEST_THROTTLE_RATE`` (e.g. ``30/hour``) requests per client address.

    The rate is read at request time, so a changed setting applies without a restart of the
    class (DRF reads ``DEFAULT_THROTTLE_RATES`` once at import). The client is ``REMOTE_ADDR``
    unless DRF's ``NUM_PROXIES`` says how many proxies to trust in ``X-Forwarded-For``: DRF's
    default (``None``) would take the whole header, which a client can forge to escape the
    limit.
    """

    scope = "booking_request"

    def get_rate(self) -> str | None:
        return settings.BOOKING_REQUEST_THROTTLE_RATE or None

    def get_ident(self, request: Request) -> str:
        if api_settings.NUM_PROXIES is None:
            return str(request.META.get("REMOTE_ADDR", ""))
        return str(super().get_ident(request))

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
