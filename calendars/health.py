"""Readiness probes for ``GET /healthz``: the database, and the broker when configured.

``HealthzMiddleware`` answers ``/healthz`` first in the middleware stack, before Django
validates the Host header or redirects to HTTPS: container health checks and load balancers
call ``http://127.0.0.1:8000/healthz``, a host that no deployment lists in ``ALLOWED_HOSTS``.
The answer reveals nothing but which part is down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.utils.cache import add_never_cache_headers
from kombu import Connection
from kombu.exceptions import OperationalError as KombuOperationalError

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 2.0


def database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.warning("health check: database unreachable")
        return False
    return True


def broker_ok() -> bool:
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport=settings.CELERY_BROKER_TRANSPORT,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            connect_timeout=BROKER_TIMEOUT_SECONDS,
        ) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
    except (KombuOperationalError, OSError, TimeoutError):
        logger.warning("health check: broker unreachable")
        return False
    return True


def health_report() -> dict[str, str]:
    """``{"database": "ok" | "unavailable", "broker": ...}``; the broker only when configured."""
    report = {"database": "ok" if database_ok() else "unavailable"}
    if settings.CELERY_BROKER_CONFIGURED:
        report["broker"] = "ok" if broker_ok() else "unavailable"
    return report


HEALTHZ_PATH = "/healthz"


def healthz_response(request: HttpRequest) -> HttpResponse:
    """200 when every part answers, 503 naming the failing parts otherwise (GET only)."""
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    report = health_report()
    failing = sorted(name for name, state in report.items() if state != "ok")
    body: dict[str, object] = {"status": "ok" if not failing else "unavailable", **report}
    if failing:
        body["failing"] = failing
    response = JsonResponse(body, status=503 if failing else 200)
    add_never_cache_headers(response)
    return response


class HealthzMiddleware:
    """Answers ``/healthz`` before host validation and the HTTPS redirect."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == HEALTHZ_PATH:
            return healthz_response(request)
        return self.get_response(request)
