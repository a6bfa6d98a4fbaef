from django.apps import AppConfig


class InvitationsConfig(AppConfig):
    name = "invitations"
    verbose_name = "Invitations and deliveries"

    def ready(self) -> None:
        # Importing the renderer registers the translation keys it uses from Python code, so
        # the translations system check verifies an operator's copy against them too.
        import invitations.emails  # noqa: F401
        from calendars.hooks import hooks_register
        from calendars.metrics import register_collector
        from invitations.selectors import deliveries_latency_metrics, deliveries_metrics
        from invitations.services.bookings import booking_email_store

        register_collector(deliveries_metrics)
        register_collector(deliveries_latency_metrics)
        # The core's bookings store their emails in the outbox (calendars.hooks).
        hooks_register(booking_email=booking_email_store)
