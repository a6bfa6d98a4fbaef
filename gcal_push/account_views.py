"""The Google account connection pages: ``GET /google/connect/`` and ``GET /google/callback/``,
and the API's ``POST /api/v1.0/google-accounts/{id}/disconnect/``.

``connect`` (a signed-in subscriber) redirects to Google's consent page; Google redirects back
to ``callback`` with ``code`` and ``state`` (or ``error``). The flow itself lives in
:mod:`gcal_push.accounts`; these views only translate HTTP.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from calendars.api.serializers import ErrorSerializer, GoogleAccountSerializer
from calendars.models import Calendar, GoogleAccount, User
from calendars.providers import ProviderError
from calendars.selectors import google_account_get
from calendars.translations import register_keys, resolve_language, translate
from gcal_push.accounts import (
    GoogleConnectError,
    google_account_disconnect,
    google_authorization_complete,
    google_authorization_start,
)

ERROR_REASONS = (
    "not_configured",
    "no_flow",
    "expired",
    "state_mismatch",
    "denied",
    "bad_request",
    "exchange_failed",
    "google_unavailable",
    "scopes_missing",
    "no_refresh_token",
    "account_taken",
)
ERROR_STATUS = {"account_taken": 409, "google_unavailable": 503, "not_configured": 503}
MAX_PARAM_LENGTH = 4096
register_keys([f"google.error.{reason}" for reason in ERROR_REASONS])


def _user_id(request: HttpRequest) -> int:
    user_id = request.user.pk
    assert isinstance(user_id, int)  # login_required ran first
    return user_id


def _language(request: HttpRequest) -> str:
    user = request.user
    return resolve_language(user.language if isinstance(user, User) else None)


def _error(request: HttpRequest, reason: str) -> HttpResponse:
    language = _language(request)
    context = {"language": language, "reason": translate(f"google.error.{reason}", language)}
    return render(
        request, "bookings/google_error.html", context, status=ERROR_STATUS.get(reason, 400)
    )


@never_cache
@login_required
@require_GET
def google_connect(request: HttpRequest) -> HttpResponse:
    try:
        url = google_authorization_start(session=request.session, user_id=_user_id(request))
    except GoogleConnectError as exc:
        return _error(request, exc.reason)
    return HttpResponseRedirect(url)


@never_cache
@login_required
@require_GET
def google_callback(request: HttpRequest) -> HttpResponse:
    params = {name: request.GET.get(name, "") for name in ("state", "code", "error")}
    if any(len(value) > MAX_PARAM_LENGTH for value in params.values()):
        return _error(request, "bad_request")
    try:
        account = google_authorization_complete(
            session=request.session,
            user_id=_user_id(request),
            state=params["state"],
            code=params["code"],
            error=params["error"],
        )
    except GoogleConnectError as exc:
        return _error(request, exc.reason)
    except ProviderError:
        # Connected, but the calendar list could not be read now.
        return _error(request, "google_unavailable")
    calendars = Calendar.objects.filter(google_account=account, connected=True).order_by(
        "display_name"
    )
    context = {"language": _language(request), "calendars": calendars}
    return render(request, "bookings/google_connected.html", context)


class GoogleAccountDisconnectView(APIView):
    """``POST /api/v1.0/google-accounts/{id}/disconnect/``: stop channels, revoke, disconnect."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: GoogleAccountSerializer, 404: ErrorSerializer})
    def post(self, request: Request, account_id: int) -> Response:
        user = request.user
        assert isinstance(user, User)  # IsAuthenticated ran first
        try:
            account = google_account_get(user=user, account_id=account_id)
        except GoogleAccount.DoesNotExist:
            return Response(
                {"detail": "Not found.", "code": "not_found"}, status=status.HTTP_404_NOT_FOUND
            )
        google_account_disconnect(account_id=account.pk)
        account.refresh_from_db()
        return Response(GoogleAccountSerializer(account).data)
