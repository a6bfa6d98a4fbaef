"""Project-level views: health."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from calendars.health import health_report


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when every part answers, 503 naming the failing parts otherwise."""
    report = health_report()
    failing = sorted(name for name, state in report.items() if state != "ok")
    body: dict[str, object] = {"status": "ok" if not failing else "unavailable", **report}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
