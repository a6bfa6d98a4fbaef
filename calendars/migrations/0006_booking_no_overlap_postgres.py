"""No two active bookings overlap on one calendar: an exclusion constraint on PostgreSQL.

Active means ``requested`` or ``booked``; declined and cancelled bookings free their slot.
``btree_gist`` lets the constraint compare ``calendar_id`` with ``=`` inside a GiST index.
The booking service checks the same rule under a lock on every database; on SQLite, where
``IMMEDIATE`` transactions serialise writers, that check is the guarantee and this migration
does nothing.
"""

from django.db import migrations

CONSTRAINT = "booking_no_overlap_per_calendar"

FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS btree_gist;",
    f"""
    ALTER TABLE calendars_booking ADD CONSTRAINT {CONSTRAINT}
    EXCLUDE USING gist (calendar_id WITH =, tstzrange("start", "end", '[)') WITH &&)
    WHERE (status IN ('requested', 'booked'));
    """,
]
REVERSE = [f"ALTER TABLE calendars_booking DROP CONSTRAINT IF EXISTS {CONSTRAINT};"]


def _on_postgres(statements):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("calendars", "0005_booking_provider_sync")]

    operations = [migrations.RunPython(_on_postgres(FORWARD), _on_postgres(REVERSE))]
