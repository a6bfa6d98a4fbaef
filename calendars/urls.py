"""URL map. The addresses of DESIGN.md section 2 are fixed; each app adds its own routes."""

from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path

from calendars import booking_views, google_views, views
from gcal_push.views import google_calendar_webhook
from scheduling.views import caldav_scheduling_callback

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/login/", views.SubscriberLoginView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path(
        "api/v1.0/caldav-scheduling-callback/",
        caldav_scheduling_callback,
        name="caldav-scheduling-callback",
    ),
    path("webhooks/google-calendar/", google_calendar_webhook, name="google-calendar-webhook"),
    path("api/v1.0/", include("calendars.api.urls")),
    path("bookings/decide/", booking_views.booking_decide, name="booking-decide"),
    path("google/connect/", google_views.google_connect, name="google-connect"),
    path("google/callback/", google_views.google_callback, name="google-callback"),
    path("", include("invitations.urls")),
]
