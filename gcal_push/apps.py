from django.apps import AppConfig


class GcalPushConfig(AppConfig):
    name = "gcal_push"
    verbose_name = "Google push notifications"

    def ready(self) -> None:
        from calendars.metrics import register_collector
        from gcal_push.selectors import channels_expiry_metrics

        register_collector(channels_expiry_metrics)
