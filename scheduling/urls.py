"""Routes of the scheduling app: the CalDAV server's callback (a fixed address)."""

from django.urls import path

from scheduling.views import caldav_scheduling_callback

urlpatterns = [
    path(
        "api/v1.0/caldav-scheduling-callback/",
        caldav_scheduling_callback,
        name="caldav-scheduling-callback",
    ),
]
