"""Routes of the invitations app: the RSVP page (a fixed address, DESIGN.md section 2) and
the inbound-email webhook that receives mail clients' own iTIP answers."""

from django.urls import path

from invitations import views
from invitations.inbound import InboundReplyWebhookView

urlpatterns = [
    path("rsvp/", views.rsvp, name="rsvp"),
    path(
        "webhooks/brevo/inbound/",
        InboundReplyWebhookView.as_view(),
        name="brevo-inbound-webhook",
    ),
]
