"""Routes of the bookings API, included under ``/api/v1.0/`` by :mod:`calendars.urls`."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from calendars.api import views

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "schedules/<slug:slug>/bookings/",
        views.BookingRequestView.as_view(),
        name="api-booking-request",
    ),
    path("schedules/", views.ScheduleListView.as_view(), name="api-schedule-list"),
    path("schedules/<slug:slug>/", views.ScheduleDetailView.as_view(), name="api-schedule-detail"),
    path("bookings/", views.BookingListView.as_view(), name="api-booking-list"),
    path(
        "bookings/<int:booking_id>/", views.BookingDetailView.as_view(), name="api-booking-detail"
    ),
    *[
        path(
            f"bookings/<int:booking_id>/{action}/",
            views.BookingActionView.as_view(action_name=action),
            name=f"api-booking-{action}",
        )
        for action in ("confirm", "deny", "cancel")
    ],
    path("calendars/", views.CalendarListView.as_view(), name="api-calendar-list"),
    path("google-accounts/", views.GoogleAccountListView.as_view(), name="api-google-account-list"),
]
