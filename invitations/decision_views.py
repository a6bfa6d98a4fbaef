"""The subscriber's decision page: ``GET/POST /bookings/decide/?token=...&action=confirm|deny``.

Like RSVP links, a GET never changes anything (mail scanners and link previews
open every link): it shows the booking and one button. The POST decides through
:func:`calendars.services.booking_decide` (which reads the booking's Google event first).
The token is signed with its own salt and expires (:mod:`calendars.booking_tokens`). Pages are
in the subscriber's language and work without JavaScript.

| case | status |
| --- | --- |
| unknown action, bad or expired token | 400 |
| booking not found | 404 |
| booking already over | 410 |
| decision impossible now (already declined or cancelled) | 409 |
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from calendars import selectors, services
from calendars.booking_tokens import DecisionTokenExpired, DecisionTokenInvalid, decision_token_read
from calendars.models import Booking, BookingStatus, TransitionSource
from calendars.translations import register_keys, resolve_language, translate
from invitations.notices import when_text

ACTIONS = ("confirm", "deny")
register_keys(
    [
        f"booking.error.{name}.{part}"
        for name in ("bad_action", "invalid_link", "expired_link", "not_found", "over", "conflict")
        for part in ("title", "text")
    ]
    + [f"booking.status.{status}" for status in BookingStatus.values]
)


def _message(
    request: HttpRequest, *, name: str, status: int, language: str | None, **params: Any
) -> HttpResponse:
    language = resolve_language(language)
    context = {
        "language": language,
        "title": translate(f"booking.error.{name}.title", language),
        "text": translate(f"booking.error.{name}.text", language, **params),
    }
    return render(request, "bookings/message.html", context, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def booking_decide(request: HttpRequest) -> HttpResponse:
    source = request.POST if request.method == "POST" else request.GET
    action = source.get("action") or request.GET.get("action", "")
    token = source.get("token") or request.GET.get("token", "")
    browser_language = request.headers.get("Accept-Language", "")[:20]
    if action not in ACTIONS:
        return _message(request, name="bad_action", status=400, language=browser_language)
    try:
        claim = decision_token_read(token)
    except DecisionTokenExpired:
        return _message(request, name="expired_link", status=410, language=browser_language)
    except DecisionTokenInvalid:
        return _message(request, name="invalid_link", status=400, language=browser_language)
    try:
        booking = selectors.booking_for_decision(
            booking_id=claim.booking_id, ical_uid=claim.ical_uid
        )
    except Booking.DoesNotExist:
        return _message(request, name="not_found", status=404, language=browser_language)
    language = resolve_language(booking.organizer.language)
    if booking.end <= timezone.now():
        return _message(request, name="over", status=410, language=language)

    if request.method == "POST":
        try:
            # The booking is brought up to date with its Google event first: a change made
            # in Google before the click wins, and the page says what the booking is now.
            services.booking_decide(
                booking_id=booking.pk,
                decision=action,
                source=TransitionSource.EMAIL_LINK,
                detail={"action": action},
            )
        except services.BookingTransitionError as exc:
            return _message(
                request,
                name="conflict",
                status=409,
                language=language,
                state=translate(f"booking.status.{exc.from_status}", language),
            )
        booking.refresh_from_db()
        return render(request, "bookings/decided.html", _context(booking, action, language, token))
    return render(request, "bookings/decide.html", _context(booking, action, language, token))


def _context(booking: Booking, action: str, language: str, token: str) -> dict[str, Any]:
    return {
        "language": language,
        "booking": booking,
        "action": action,
        "token": token,
        "pending": booking.status == BookingStatus.REQUESTED,
        "status_text": translate(f"booking.status.{booking.status}", language),
        "when": when_text(
            start=booking.start,
            end=booking.end,
            zone=booking.organizer.time_zone,
            language=language,
        ),
    }
