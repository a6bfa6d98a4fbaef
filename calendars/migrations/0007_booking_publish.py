# "Sync" means Google to Convoke only (issue 12): the booking's write-back to its calendar is
# its publish. The fields are renamed, "synced" becomes "published", and publish_due_at lets
# the publish sweep enqueue again a booking whose enqueue or retry was lost.

from django.db import migrations, models


def synced_to_published(apps, schema_editor):
    Booking = apps.get_model("calendars", "Booking")
    Booking.objects.filter(publish_state="synced").update(publish_state="published")
    # Pending bookings are due at once: their enqueue may have been lost before this release.
    Booking.objects.filter(publish_state="pending").update(publish_due_at=models.F("updated_at"))


def published_to_synced(apps, schema_editor):
    Booking = apps.get_model("calendars", "Booking")
    Booking.objects.filter(publish_state="published").update(publish_state="synced")


class Migration(migrations.Migration):

    dependencies = [
        ('calendars', '0006_booking_no_overlap_postgres'),
    ]

    operations = [
        migrations.RenameField(model_name='booking', old_name='sync_state', new_name='publish_state'),
        migrations.RenameField(model_name='booking', old_name='sync_error', new_name='publish_error'),
        migrations.RenameField(
            model_name='booking', old_name='sync_lease_until', new_name='publish_lease_until'
        ),
        migrations.AddField(
            model_name='booking',
            name='publish_due_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='booking',
            name='publish_state',
            field=models.CharField(choices=[('pending', 'Pending'), ('published', 'Published'), ('failed', 'Failed')], default='pending', max_length=16, verbose_name='calendar publish state'),
        ),
        migrations.RunPython(synced_to_published, published_to_synced, elidable=False),
        migrations.AddIndex(
            model_name='booking',
            index=models.Index(fields=['publish_state', 'publish_due_at'], name='booking_publish_due'),
        ),
    ]
