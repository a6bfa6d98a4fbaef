"""Routes of the invitations app: the RSVP page (a fixed address, DESIGN.md section 2)."""

from django.urls import path

from invitations import views

urlpatterns = [
    path("rsvp/", views.rsvp, name="rsvp"),
]
