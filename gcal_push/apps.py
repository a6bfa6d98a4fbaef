from django.apps import AppConfig


class GcalPushConfig(AppConfig):
    name = "gcal_push"
    verbose_name = "Google push notifications"
