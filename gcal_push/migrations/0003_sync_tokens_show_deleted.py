"""The sync now lists with ``showDeleted=true`` (a deleted event keeps the attendees'
answers on the organizer's calendar). Google requires the parameters of an incremental
listing to be those of the full listing that produced its token (guides/sync), so every
stored token is dropped: the next sync of each calendar is a full one, which reconciles.
"""

from django.db import migrations


def tokens_drop(apps, schema_editor):  # type: ignore[no-untyped-def]
    state = apps.get_model("gcal_push", "GoogleCalendarSyncState")
    state.objects.exclude(sync_token="").update(sync_token="", dirty=True)


class Migration(migrations.Migration):
    dependencies = [("gcal_push", "0002_channel_unique_per_calendar")]

    operations = [migrations.RunPython(tokens_drop, migrations.RunPython.noop)]
