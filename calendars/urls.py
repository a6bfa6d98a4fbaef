"""URL map. The addresses of DESIGN.md section 2 are fixed; each app adds its own routes."""

from django.contrib import admin
from django.urls import path

from calendars import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", views.metrics, name="metrics"),
    path("admin/", admin.site.urls),
]
