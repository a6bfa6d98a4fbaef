"""Project-level views: health, metrics and the subscribers' sign-in page."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

from django.conf import settings
from django.contrib.auth.views import LoginView
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from calendars.health import healthz_response
from calendars.metrics import metrics_render
from calendars.translations import resolve_language


def healthz(request: HttpRequest) -> HttpResponse:
    """``GET /healthz``; ``calendars.health.HealthzMiddleware`` answers it first in a full
    stack, this route serves stacks without that middleware (tests' URL resolution)."""
    return healthz_response(request)


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. With METRICS_TOKEN set, a matching bearer token is required;
    without it, only loopback clients are answered."""
    token = settings.METRICS_TOKEN
    if token:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), token.encode()
        ):
            return HttpResponse(
                "A valid 'Authorization: Bearer <METRICS_TOKEN>' header is required.\n",
                status=401,
                content_type="text/plain; charset=utf-8",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    elif not _is_loopback(request.META.get("REMOTE_ADDR", "")):
        return HttpResponse(
            "Metrics answer loopback clients only; set METRICS_TOKEN to allow others.\n",
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    return HttpResponse(metrics_render(), content_type=CONTENT_TYPE_LATEST)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


class SubscriberLoginView(LoginView):
    """Sign-in for subscribers (the API's session authentication, ``/google/connect/``).

    The page speaks the browser's language (Accept-Language) when Convoke has it.
    """

    template_name = "pages/login.html"
    redirect_authenticated_user = True

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        self.language = resolve_language(translation.get_language_from_request(request))
        with translation.override(self.language):
            response = super().dispatch(request, *args, **kwargs)
            if hasattr(response, "render"):
                response.render()
        return response

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "language": self.language}
