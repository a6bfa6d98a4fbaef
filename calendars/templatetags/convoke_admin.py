"""``{% operator_panel %}``: the counts at the top of the admin's index page."""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import reverse

from calendars.admin_panel import operator_panel_counts

register = template.Library()


@register.inclusion_tag("admin/convoke/panel.html", takes_context=True)
def operator_panel(context: template.Context) -> dict[str, Any]:
    """Shown to operators who may view deliveries; nothing for other staff."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.has_perm("invitations.view_delivery"):
        return {"panel": None}
    channels = reverse("admin:gcal_push_googlecalendarchannel_changelist")
    return {
        "panel": operator_panel_counts(),
        "links": {
            "deliveries": reverse("admin:invitations_delivery_changelist"),
            "channels_expired": f"{channels}?expiry=expired",
            "channels_expiring": f"{channels}?expiry=soon",
            "sync_states_failed": reverse("admin:gcal_push_googlecalendarsyncstate_changelist")
            + "?last_sync=failed",
            "bookings": reverse("admin:calendars_booking_changelist"),
        },
    }
