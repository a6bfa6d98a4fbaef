"""Readiness probes for ``GET /healthz``: the database, and the broker when configured."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, connection
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
