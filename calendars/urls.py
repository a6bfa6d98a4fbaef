"""URL map. The addresses of DESIGN.md section 2 are fixed; each app adds its own routes."""

from django.contrib import admin
from django.urls import path

from calendars import views
from gcal_push.views import google_calendar_webhook
from scheduling.views import caldav_scheduling_callback

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path(
        "api/v1.0/caldav-scheduling-callback/",
        caldav_scheduling_callback,
        name="caldav-scheduling-callback",
    ),
    path("webhooks/google-calendar/", google_calendar_webhook, name="google-calendar-webhook"),
]
