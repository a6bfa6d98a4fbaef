"""La Suite Messages: submit an email from the organizer's own mailbox.

Contract (``docs/messages-and-caldav.md``, from the Messages backend's submit and
provisioning views):

- ``GET {MESSAGES_API_URL}/api/v1.0/provisioning/mailboxes/?email=<address>`` answers
  ``{"results": [{"id": ..., "email": ..., ...}]}``; the id of the sender's mailbox is cached
  for ``MESSAGES_MAILBOX_CACHE_SECONDS``.
- ``POST {MESSAGES_API_URL}/api/v1.0/submit/`` with ``Content-Type: message/rfc822`` and the
  complete RFC 5322 message as the body; ``X-Channel-Id`` and ``X-API-Key`` authenticate the
  channel, ``X-Mail-From`` names the mailbox (by id), ``X-Rcpt-To`` the envelope recipients.
  202 ``{"message_id": ..., "status": "accepted"}`` means queued.

Messages has no idempotency: every accepted POST sends again. A read timeout is ambiguous;
it is retried (transient), and the stable Message-ID lets mail clients fold a duplicate.
There is no fallback to the SMTP route: the organizer chose their mailbox.
"""

from __future__ import annotations

import hashlib
import logging
from email.headerregistry import Address
from email.policy import SMTP as RFC5322_CRLF
from email.utils import parseaddr
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMessage

from invitations.transports.base import (
    PermanentSendError,
    SendError,
    SendResult,
    TransientSendError,
)

logger = logging.getLogger(__name__)

SUBMIT_PATH = "/api/v1.0/submit/"
MAILBOXES_PATH = "/api/v1.0/provisioning/mailboxes/"
CACHE_PREFIX = "invitations:messages-mailbox:"
MAX_DETAIL_LENGTH = 200


def _cache_key(address: str) -> str:
    # A digest keeps addresses out of cache keys (and out of any cache server's logs).
    return CACHE_PREFIX + hashlib.sha256(address.lower().encode("utf-8")).hexdigest()


def _safe_detail(response: requests.Response) -> str:
    """The ``detail`` of a JSON error body, with anything address-like removed."""
    try:
        payload = response.json()
    except ValueError:
        return ""
    detail = payload.get("detail") if isinstance(payload, dict) else None
    if not isinstance(detail, str):
        return ""
    words = ["<address>" if "@" in word else word for word in detail.split()]
    return " ".join(words)[:MAX_DETAIL_LENGTH]


def _http_error(response: requests.Response, what: str) -> SendError:
    status = response.status_code
    detail = _safe_detail(response)
    reason = f"Messages API {what} answered HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429 or status >= 500:
        return TransientSendError(reason)
    return PermanentSendError(reason)


class MessagesApiTransport:
    """Submit through the La Suite Messages API as the sender's mailbox."""

    def __init__(self) -> None:
        self.base_url = settings.MESSAGES_API_URL.rstrip("/")
        self.api_key = settings.MESSAGES_API_KEY
        self.channel_id = settings.MESSAGES_CHANNEL_ID
        self.timeout = settings.MESSAGES_API_TIMEOUT_SECONDS

    def _headers(self) -> dict[str, str]:
        return {"X-Channel-Id": self.channel_id, "X-API-Key": self.api_key}

    def _request(self, method: str, path: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            return requests.request(
                method, self.base_url + path, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.ConnectionError as exc:
            raise TransientSendError(f"cannot reach the Messages API ({what})") from exc
        except requests.Timeout as exc:
            raise TransientSendError(f"the Messages API timed out ({what})") from exc
        except requests.RequestException as exc:
            raise TransientSendError(
                f"request to the Messages API failed ({what}, {type(exc).__name__})"
            ) from exc

    def mailbox_id(self, address: str) -> str:
        """The id of the Messages mailbox whose address is ``address`` (cached)."""
        key = _cache_key(address)
        cached = cache.get(key)
        if isinstance(cached, str) and cached:
            return cached
        response = self._request(
            "GET",
            MAILBOXES_PATH,
            "mailbox lookup",
            params={"email": address},
            headers=self._headers(),
        )
        if response.status_code != 200:
            raise _http_error(response, "mailbox lookup")
        try:
            payload = response.json()
        except ValueError as exc:
            raise TransientSendError("the Messages API mailbox lookup answered non-JSON") from exc
        results = payload.get("results") if isinstance(payload, dict) else payload
        if not isinstance(results, list):
            raise TransientSendError("the Messages API mailbox lookup answered an unknown shape")
        for mailbox in results:
            if (
                isinstance(mailbox, dict)
                and str(mailbox.get("email", "")).lower() == address.lower()
                and mailbox.get("id")
            ):
                mailbox_id = str(mailbox["id"])
                cache.set(key, mailbox_id, settings.MESSAGES_MAILBOX_CACHE_SECONDS)
                return mailbox_id
        raise PermanentSendError("the sender has no mailbox in La Suite Messages")

    def send(self, *, email: EmailMessage, sender: str, recipient: str) -> SendResult:
        if not (self.base_url and self.api_key and self.channel_id):
            raise PermanentSendError(
                "the Messages API is not configured "
                "(MESSAGES_API_URL, MESSAGES_API_KEY, MESSAGES_CHANNEL_ID)"
            )
        if email.bcc:
            # The submit endpoint refuses a Bcc header with 400.
            raise PermanentSendError("the Messages API does not accept Bcc recipients")
        mailbox_id = self.mailbox_id(sender)
        # Through Messages the email leaves from the sender's own mailbox (and lands in its
        # sent folder), so its From must be that mailbox's address or Messages answers 403.
        display_name, _address = parseaddr(str(email.from_email))
        email.from_email = str(Address(display_name=display_name, addr_spec=sender))
        raw = email.message(policy=RFC5322_CRLF).as_bytes()
        response = self._request(
            "POST",
            SUBMIT_PATH,
            "submit",
            data=raw,
            headers={
                **self._headers(),
                "Content-Type": "message/rfc822",
                "X-Mail-From": mailbox_id,
                "X-Rcpt-To": recipient,
            },
        )
        if response.status_code == 404:
            # The mailbox may have been removed since it was cached: look it up afresh next time.
            cache.delete(_cache_key(sender))
        if response.status_code not in (200, 201, 202):
            raise _http_error(response, "submit")
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        provider_id = payload.get("message_id") if isinstance(payload, dict) else None
        return SendResult(provider_message_id=str(provider_id) if provider_id else "")
