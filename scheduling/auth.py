"""Authentication of the CalDAV server's scheduling callback: one shared API key.

The key arrives in ``X-LS-Api-Key`` (La Suite's plugin) or ``X-Api-Key`` (older servers) and
is compared in constant time with ``CALDAV_INBOUND_API_KEY``. It is never logged, not even
in part. Without a configured key every callback is refused.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from django.conf import settings

API_KEY_HEADERS = ("X-LS-Api-Key", "X-Api-Key")


def callback_api_key_valid(headers: Mapping[str, str]) -> bool:
    """Whether the request carries the inbound API key (``request.headers``)."""
    expected = settings.CALDAV_INBOUND_API_KEY
    if not expected:
        return False
    presented = next((headers[name] for name in API_KEY_HEADERS if name in headers), None)
    if presented is None:
        return False
    # WSGI header values are latin-1 strings; comparing bytes keeps compare_digest happy
    # whatever characters a client sends.
    return hmac.compare_digest(
        presented.strip().encode("utf-8", "surrogateescape"), expected.encode("utf-8")
    )
