"""``POST /webhooks/google-calendar/``: Google's push notifications (docs/design.md 1.4).

Translates the headers into a :class:`~gcal_push.notifications.Notification` and answers.
The body is never read (Google sends none). Every verified or refused notification gets 200:
Google retries only 500, 502, 503 and 504, and treats any other status as a failed message
(guides/push). 503 is kept for the one case where a retry helps: the database could not
record the mark.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from gcal_push.notifications import Notification, NotificationNotRecorded, notification_receive


@csrf_exempt
@never_cache
@require_POST
def google_calendar_webhook(request: HttpRequest) -> HttpResponse:
    headers = request.headers
    notification = Notification(
        channel_id=headers.get("X-Goog-Channel-ID", "").strip(),
        token=headers.get("X-Goog-Channel-Token", ""),
        resource_id=headers.get("X-Goog-Resource-ID", "").strip(),
        resource_state=headers.get("X-Goog-Resource-State", "").strip().lower(),
        message_number=headers.get("X-Goog-Message-Number", "").strip(),
    )
    try:
        notification_receive(notification=notification)
    except NotificationNotRecorded:
        return HttpResponse(status=503, headers={"Retry-After": "5"})
    return HttpResponse(status=200)
