"""The RSVP page: ``GET/POST /rsvp/?token=...&action=accepted|tentative|declined``
(docs/design.md 1.2).

A GET shows the event as the organizer's CalDAV server stores it, the invitee's current
answer and three buttons (the link's one highlighted); it changes nothing, so mail scanners,
link previews and prefetchers that open every link record nothing. The buttons POST a
CSRF-protected form (no JavaScript); the POST records the answer through
:func:`invitations.rsvp.rsvp_answer_record` and shows the result with the same buttons, so the
answer can be changed at once or later from the same link. Pages are in the invitee's
language (their account's or booking's, else the browser's).

| case | status |
| --- | --- |
| bad or tampered token, unknown action | 400 |
| not an attendee of the event | 403 |
| event gone (deleted, cancelled, occurrence removed) | 404 |
| token expired, or the event (occurrence) is over | 410 |
| CalDAV server unreachable or failing (nothing was written) | 503, try again |
| no CalDAV server configured (answers cannot be recorded at all) | 503, no retry |

After a POST the page says how the organizer hears of the answer: from the CalDAV server
(the attendee's own copy was written), by Convoke's email (the organizer's copy was), or
that nothing changed.
"""

from __future__ import annotations

import zoneinfo
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from calendars.models import TransitionSource
from calendars.translations import register_keys, resolve_language, translate
from invitations.answers import RsvpAction
from invitations.rendering.dates import moment_text, when_text
from invitations.rsvp import (
    OrganizerNotice,
    Preferences,
    RsvpEvent,
    RsvpEventGone,
    RsvpEventOver,
    RsvpNotAttendee,
    RsvpNotConfigured,
    RsvpOutcome,
    RsvpUnavailable,
    rsvp_answer_record,
    rsvp_event_get,
    rsvp_preferences,
)
from invitations.tokens import RsvpToken, RsvpTokenExpired, RsvpTokenInvalid, rsvp_token_read

ERRORS = (
    "invalid_link",
    "bad_action",
    "expired_link",
    "not_found",
    "over",
    "not_attendee",
    "unavailable",
    "not_configured",
)
PARTSTAT_WORDS = ("accepted", "tentative", "declined", "needs-action", "delegated", "other")
register_keys(
    [f"rsvp.error.{name}.{part}" for name in ERRORS for part in ("title", "text")]
    + [f"rsvp.partstat.{word}" for word in PARTSTAT_WORDS]
    + [f"rsvp.button.{action}" for action in RsvpAction]
    + [f"rsvp.done.{action}.title" for action in RsvpAction]
    + [f"rsvp.done.{notice}" for notice in ("server", "email", "recorded", "unchanged")]
    + ["rsvp.no_title"]
)

# The token sits in the URL: keep it out of Referer headers sent to other sites, and out of
# search indexes. Not "no-referrer": browsers then send "Origin: null" with the form's POST,
# which Django's CSRF check rightly refuses.
PRIVATE_HEADERS = {"Referrer-Policy": "same-origin", "X-Robots-Tag": "noindex, nofollow"}


def _render(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    response = render(request, template, context, status=status)
    for name, value in PRIVATE_HEADERS.items():
        response[name] = value
    return response


def _message(
    request: HttpRequest,
    *,
    name: str,
    status: int,
    language: str,
    retry_url: str = "",
) -> HttpResponse:
    context = {
        "language": language,
        "title": translate(f"rsvp.error.{name}.title", language),
        "text": translate(f"rsvp.error.{name}.text", language),
        "retry_url": retry_url,
    }
    response = _render(request, "rsvp/message.html", context, status=status)
    if status == 503 and retry_url:
        response["Retry-After"] = "60"
    return response


def _partstat_text(partstat: str, language: str) -> str:
    word = partstat.lower()
    return translate(f"rsvp.partstat.{word if word in PARTSTAT_WORDS else 'other'}", language)


def _zone(preferred: str | None, event_zone: str | None) -> str | None:
    for name in (preferred, event_zone):
        if name:
            try:
                zoneinfo.ZoneInfo(name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                continue
            return name
    return None


def _page_context(
    *,
    shown: RsvpEvent,
    token: str,
    chosen: str,
    language: str,
    preferences: Preferences,
) -> dict[str, Any]:
    event = shown.event
    zone = _zone(preferences.time_zone, event.time_zone)
    when = when_text(event, zone=zone, language=language)
    return {
        "language": language,
        "token": token,
        "summary": " ".join(event.summary.split()) or translate("rsvp.no_title", language),
        "when": when.text,
        "when_original": when.original,
        "occurrence": moment_text(shown.occurrence, zone=zone, language=language)
        if shown.occurrence is not None
        else "",
        "location": " ".join(event.location.split()),
        "organizer_name": " ".join(shown.organizer_name.split()),
        "organizer_address": shown.organizer_address,
        "attendee": shown.attendee,
        "partstat": shown.partstat,
        "current_text": _partstat_text(shown.partstat, language),
        "buttons": [
            {
                "action": action,
                "label": translate(f"rsvp.button.{action}", language),
                "chosen": action == chosen,
            }
            for action in RsvpAction
        ],
    }


def _token_language(token: RsvpToken, browser: str) -> tuple[str, Preferences]:
    preferences = rsvp_preferences(attendee=token.attendee, uid=token.uid)
    return resolve_language(preferences.language or browser), preferences


@never_cache
@require_http_methods(["GET", "POST"])
def rsvp(request: HttpRequest) -> HttpResponse:
    posted = request.method == "POST"
    source = request.POST if posted else request.GET
    token_text = source.get("token", "")
    action = source.get("action", "")
    browser = request.headers.get("Accept-Language", "")[:35]
    try:
        token = rsvp_token_read(token_text)
    except RsvpTokenExpired as exc:
        language, _ = _token_language(exc.token, browser)
        return _message(request, name="expired_link", status=410, language=language)
    except RsvpTokenInvalid:
        return _message(
            request, name="invalid_link", status=400, language=resolve_language(browser)
        )
    language, preferences = _token_language(token, browser)
    if action not in RsvpAction and (posted or action):
        return _message(request, name="bad_action", status=400, language=language)
    retry_url = f"{request.path}?{urlencode({'token': token_text, 'action': action})}"
    try:
        if posted:
            outcome = rsvp_answer_record(
                uid=token.uid,
                organizer=token.organizer,
                attendee=token.attendee,
                recurrence_id=token.recurrence_id,
                partstat=RsvpAction(action).partstat,
                source=TransitionSource.EMAIL_LINK,
            )
            shown = outcome.event
        else:
            shown = rsvp_event_get(
                uid=token.uid,
                organizer=token.organizer,
                attendee=token.attendee,
                recurrence_id=token.recurrence_id,
            )
    except RsvpNotAttendee:
        return _message(request, name="not_attendee", status=403, language=language)
    except RsvpEventGone:
        return _message(request, name="not_found", status=404, language=language)
    except RsvpEventOver:
        return _message(request, name="over", status=410, language=language)
    except RsvpNotConfigured:
        return _message(request, name="not_configured", status=503, language=language)
    except RsvpUnavailable:
        return _message(
            request, name="unavailable", status=503, language=language, retry_url=retry_url
        )
    context = _page_context(
        shown=shown, token=token_text, chosen=action, language=language, preferences=preferences
    )
    if posted:
        organizer = context["organizer_name"] or shown.organizer_address
        context["done"] = {
            "title": translate(f"rsvp.done.{action}.title", language),
            "text": translate(f"rsvp.done.{_done(outcome)}", language, organizer=organizer),
        }
    return _render(request, "rsvp/answer.html", context)


def _done(outcome: RsvpOutcome) -> str:
    """What the page says happened (the key under ``rsvp.done.``)."""
    if not outcome.changed:
        return "unchanged"
    if outcome.notice is OrganizerNotice.SERVER:
        return "server"
    if outcome.notice is OrganizerNotice.EMAIL:
        return "email"
    return "recorded"
