"""What Convoke last saw of a booking's Google event (ETag, status, ``updated``), and the
bookings that a change made in Google moved onto another active booking's time.

Such a booking keeps Google's time (the calendar is the truth) and is shown to operators, so
the PostgreSQL no-overlap constraint of migration 0006 now leaves it out; new requests are
still checked against every active booking, under the calendar's lock.
"""

from django.db import migrations, models

CONSTRAINT = "booking_no_overlap_per_calendar"

FORWARD = [
    f"ALTER TABLE calendars_booking DROP CONSTRAINT IF EXISTS {CONSTRAINT};",
    f"""
    ALTER TABLE calendars_booking ADD CONSTRAINT {CONSTRAINT}
    EXCLUDE USING gist (calendar_id WITH =, tstzrange("start", "end", '[)') WITH &&)
    WHERE (status IN ('requested', 'booked') AND NOT "overlaps");
    """,
]
REVERSE = [
    f"ALTER TABLE calendars_booking DROP CONSTRAINT IF EXISTS {CONSTRAINT};",
    f"""
    ALTER TABLE calendars_booking ADD CONSTRAINT {CONSTRAINT}
    EXCLUDE USING gist (calendar_id WITH =, tstzrange("start", "end", '[)') WITH &&)
    WHERE (status IN ('requested', 'booked'));
    """,
]


def _on_postgres(statements):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("calendars", "0008_delete_metric_counter")]

    operations = [
        migrations.AddField(
            model_name="booking",
            name="google_etag",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="booking",
            name="google_event_status",
            field=models.CharField(blank=True, max_length=16),
        ),
        migrations.AddField(
            model_name="booking",
            name="google_updated",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="booking",
            name="overlaps",
            field=models.BooleanField(default=False, verbose_name="overlaps another booking"),
        ),
        migrations.RunPython(_on_postgres(FORWARD), _on_postgres(REVERSE)),
    ]
