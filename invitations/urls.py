"""Routes of the invitations app (fixed addresses, docs/architecture.md): the RSVP page, the
subscriber's booking decision page, and the inbound-email webhook that receives mail
clients' own iTIP answers."""

from django.urls import path

from invitations import decision_views, views
from invitations.inbound import InboundReplyWebhookView

urlpatterns = [
    path("rsvp/", views.rsvp, name="rsvp"),
    path("bookings/decide/", decision_views.booking_decide, name="booking-decide"),
    path(
        "webhooks/brevo/inbound/",
        InboundReplyWebhookView.as_view(),
        name="brevo-inbound-webhook",
    ),
]
