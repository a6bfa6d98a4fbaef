"""The project's URL map. The addresses of docs/architecture.md are fixed; each app brings its
own routes, included by name so that the project package imports none of them."""

from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path

from calendars import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/login/", views.SubscriberLoginView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("", include("scheduling.urls")),
    path("", include("gcal_push.urls")),
    path("api/v1.0/", include("calendars.api.urls")),
    path("", include("invitations.urls")),
]
