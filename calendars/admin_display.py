"""What the operators' console shows the same way on every page: masked addresses, status
badges, times in the operator's own time zone.

Badges carry their label as text (colour is never the only signal) and use dark text on a
light background with a contrast ratio above 7:1 (WCAG AAA); the colours are in
``templates/admin/base_site.html``.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString

# Tones of the badges: ok (green), wait (amber), bad (red), off (grey), info (blue).
TONES = frozenset({"ok", "wait", "bad", "off", "info"})
TIME_FORMAT = "Y-m-d H:i T"


def mask_address(address: str) -> str:
    """``bob@example.net`` -> ``b***@example.net``: enough to tell addresses apart in a
    list, not enough to copy one."""
    local, at, domain = (address or "").rpartition("@")
    if not at:
        return "***" if address else ""
    return f"{local[:1]}***@{domain}"


def badge(label: str, tone: str, *, title: str = "") -> SafeString:
    """A coloured pill that says ``label`` (escaped); ``tone`` picks its colours."""
    if tone not in TONES:
        raise ValueError(f"unknown badge tone {tone!r}")
    return format_html(
        '<span class="cv-badge cv-{}" title="{}">{}</span>', tone, title or label, label
    )


def operator_zone(request: HttpRequest) -> zoneinfo.ZoneInfo | None:
    """The logged-in operator's time zone (``User.time_zone``), or None."""
    name = getattr(request.user, "time_zone", "") or ""
    try:
        return zoneinfo.ZoneInfo(name) if name else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def local_time(value: dt.datetime | None) -> str:
    """``value`` in the current time zone (the operator's while a console page renders)."""
    if value is None:
        return "—"
    return date_format(timezone.localtime(value), TIME_FORMAT)


class OperatorTimeZoneMixin:
    """Render list and change pages in the operator's time zone.

    The zone is active while the view builds its queries (the date hierarchy truncates dates
    in it) and while the template renders (every datetime shown is converted), which for a
    ``TemplateResponse`` happens after the view returns, hence the explicit ``render()``.
    """

    def _in_operator_zone(self, request: HttpRequest, view: Any, *args: Any, **kwargs: Any) -> Any:
        zone = operator_zone(request)
        if zone is None:
            return view(request, *args, **kwargs)
        with timezone.override(zone):
            response = view(request, *args, **kwargs)
            if isinstance(response, TemplateResponse) and not response.is_rendered:
                response.render()
        return response

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return self._in_operator_zone(
            request,
            super().changelist_view,  # type: ignore[misc]
            extra_context=extra_context,
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        return self._in_operator_zone(
            request,
            super().change_view,  # type: ignore[misc]
            object_id,
            form_url,
            extra_context=extra_context,
        )


class ReadOnlyPagesMixin:
    """For records that only Convoke's services write (deliveries, messages, transitions,
    channels, grants): the detail page shows them without Save or Delete buttons, and nothing
    is added, changed or deleted by hand. Admin actions keep their own permissions."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if request.method == "POST":
            raise PermissionDenied
        context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": False,
        }
        return super().change_view(request, object_id, form_url, context)  # type: ignore[misc]
