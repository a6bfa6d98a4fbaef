from django.apps import AppConfig


class InvitationsConfig(AppConfig):
    name = "invitations"
    verbose_name = "Invitations and deliveries"

    def ready(self) -> None:
        from calendars.metrics import register_collector
        from invitations.selectors import deliveries_latency_metrics, deliveries_metrics

        register_collector(deliveries_metrics)
        register_collector(deliveries_latency_metrics)
