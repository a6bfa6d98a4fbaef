from django.apps import AppConfig


class GcalPushConfig(AppConfig):
    name = "gcal_push"
    verbose_name = "Google Calendar (accounts, push notifications, sync)"

    def ready(self) -> None:
        from calendars.hooks import hooks_register
        from calendars.metrics import register_collector
        from gcal_push.credentials import google_client
        from gcal_push.mapping import booking_event_apply
        from gcal_push.revocation import google_account_revoked_record
        from gcal_push.selectors import channels_expiry_metrics
        from gcal_push.services import calendars_watch_enqueue

        register_collector(channels_expiry_metrics)
        # What the core's bookings and schedules ask of the Google app (calendars.hooks).
        hooks_register(
            google_client=google_client,
            google_grant_revoked=google_account_revoked_record,
            calendars_watch_changed=calendars_watch_enqueue,
            google_event_apply=booking_event_apply,
        )
