"""``{% operator_panel %}``: the counts at the top of the admin's index page."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from calendars.admin_panel import EXPIRY_WARNING, operator_panel_counts

register = template.Library()


@register.inclusion_tag("admin/convoke/panel.html", takes_context=True)
def operator_panel(context: template.Context) -> dict[str, Any]:
    """Shown to operators who may view deliveries; nothing for other staff."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("invitations.view_delivery"):
        return {"panel": None}
    now = timezone.now().replace(microsecond=0)
    channels = reverse("admin:gcal_push_googlecalendarchannel_changelist")
    active = {"state__exact": "active"}
    return {
        "panel": operator_panel_counts(now=now),
        "links": {
            "deliveries": reverse("admin:invitations_delivery_changelist"),
            "channels_expired": channels
            + "?"
            + urlencode({**active, "expiration__lte": now.isoformat()}),
            "channels_expiring": channels
            + "?"
            + urlencode(
                {
                    **active,
                    "expiration__gt": now.isoformat(),
                    "expiration__lte": (now + EXPIRY_WARNING).isoformat(),
                }
            ),
            "sync_states_failed": reverse("admin:gcal_push_googlecalendarsyncstate_changelist")
            + "?last_failure_at__isnull=False",
            "bookings": reverse("admin:calendars_booking_changelist"),
        },
    }
