"""Routes of the Google app: the push webhook, the account connection pages and the API's
disconnect (fixed addresses, docs/architecture.md)."""

from django.urls import path

from gcal_push import account_views
from gcal_push.views import google_calendar_webhook

urlpatterns = [
    path("webhooks/google-calendar/", google_calendar_webhook, name="google-calendar-webhook"),
    path("google/connect/", account_views.google_connect, name="google-connect"),
    path("google/callback/", account_views.google_callback, name="google-callback"),
    path(
        "api/v1.0/google-accounts/<int:account_id>/disconnect/",
        account_views.GoogleAccountDisconnectView.as_view(),
        name="api-google-account-disconnect",
    ),
]
