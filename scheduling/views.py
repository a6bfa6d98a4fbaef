"""``POST /api/v1.0/caldav-scheduling-callback/``: the CalDAV server's iMIP-over-HTTP callback.

Checks, in order: method (405), API key (401), size (413), content type (415), headers
(400), body and iTIP rules (400); then stores the message and its delivery and answers 202
after the commit, or 503 when storing failed. Every refusal is plain text naming the
problem. The server waits at most 10 s and never retries, so nothing slow happens here.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt

from scheduling.auth import callback_api_key_valid
from scheduling.headers import CallbackHeaderError, callback_headers_parse
from scheduling.services import (
    CallbackRejected,
    CallbackStoreFailed,
    callback_refusal_record,
    scheduling_message_receive,
)

logger = logging.getLogger(__name__)

ACCEPTED_CONTENT_TYPES = ("text/calendar",)


def _plain(text: str, status: int, **headers: str) -> HttpResponse:
    return HttpResponse(
        text + "\n", status=status, content_type="text/plain; charset=utf-8", headers=headers
    )


def _refuse(text: str, status: int, code: str, **headers: str) -> HttpResponse:
    logger.info("scheduling callback refused status=%d reason=%s", status, code)
    callback_refusal_record(reason=code)
    return _plain(text, status, **headers)


def _declared_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None


@csrf_exempt
@never_cache
def caldav_scheduling_callback(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _refuse("Only POST is allowed.", 405, "method_not_allowed", Allow="POST")
    if not callback_api_key_valid(request.headers):
        return _refuse(
            "A valid API key is required in X-LS-Api-Key (or X-Api-Key).", 401, "unauthorized"
        )
    limit = settings.CALLBACK_MAX_BYTES
    declared = _declared_length(request)
    if declared is None:
        return _refuse("Content-Length is not a number.", 400, "headers")
    if declared > limit:
        return _refuse(f"The body is larger than {limit} bytes.", 413, "too_large")
    content_type = (request.content_type or "").lower()
    if content_type not in ACCEPTED_CONTENT_TYPES:
        return _refuse("Content-Type must be text/calendar.", 415, "content_type")
    try:
        headers = callback_headers_parse(request.headers)
    except CallbackHeaderError as exc:
        return _refuse(str(exc), 400, "headers")
    body = request.read(limit + 1)
    if len(body) > limit:
        return _refuse(f"The body is larger than {limit} bytes.", 413, "too_large")
    try:
        result = scheduling_message_receive(
            body=body,
            method=headers.method,
            sender=headers.sender,
            recipient=headers.recipient,
            is_mailbox=headers.is_mailbox,
            org_id=headers.org_id,
        )
    except CallbackRejected as exc:
        return _refuse(exc.reason, 400, exc.code)
    except CallbackStoreFailed:
        return _plain("The message could not be stored; please try again.", 503)
    state = "accepted" if result.created else "already accepted"
    return _plain(f"{state}: message {result.message.pk}", 202)
