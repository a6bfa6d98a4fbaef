"""A schedule's calendar must belong to the schedule's owner, checked by the database.

The rule spans two tables, so a CHECK constraint cannot express it; a trigger on each side
does, on SQLite and PostgreSQL alike. Changing a calendar's owner while a schedule of the old
owner points at it is refused too.
"""

from django.db import migrations

MESSAGE = "schedule_calendar_owner: the calendar of a schedule must belong to its owner"

SQLITE_FORWARD = [
    f"""
    CREATE TRIGGER schedule_calendar_owner_insert BEFORE INSERT ON calendars_schedule
    WHEN (SELECT owner_id FROM calendars_calendar WHERE id = NEW.calendar_id) IS NOT NEW.owner_id
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
    """,
    f"""
    CREATE TRIGGER schedule_calendar_owner_update BEFORE UPDATE OF owner_id, calendar_id
    ON calendars_schedule
    WHEN (SELECT owner_id FROM calendars_calendar WHERE id = NEW.calendar_id) IS NOT NEW.owner_id
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
    """,
    f"""
    CREATE TRIGGER calendar_owner_change BEFORE UPDATE OF owner_id ON calendars_calendar
    WHEN EXISTS (SELECT 1 FROM calendars_schedule
                 WHERE calendar_id = NEW.id AND owner_id IS NOT NEW.owner_id)
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;
    """,
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS schedule_calendar_owner_insert;",
    "DROP TRIGGER IF EXISTS schedule_calendar_owner_update;",
    "DROP TRIGGER IF EXISTS calendar_owner_change;",
]

POSTGRES_FORWARD = [
    f"""
    CREATE FUNCTION schedule_calendar_owner_check() RETURNS trigger AS $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM calendars_calendar
                       WHERE id = NEW.calendar_id AND owner_id = NEW.owner_id) THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END;
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER schedule_calendar_owner BEFORE INSERT OR UPDATE OF owner_id, calendar_id
    ON calendars_schedule FOR EACH ROW EXECUTE FUNCTION schedule_calendar_owner_check();
    """,
    f"""
    CREATE FUNCTION calendar_owner_change_check() RETURNS trigger AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM calendars_schedule
                   WHERE calendar_id = NEW.id AND owner_id <> NEW.owner_id) THEN
            RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END;
    $$ LANGUAGE plpgsql;
    """,
    """
    CREATE TRIGGER calendar_owner_change BEFORE UPDATE OF owner_id
    ON calendars_calendar FOR EACH ROW EXECUTE FUNCTION calendar_owner_change_check();
    """,
]
POSTGRES_REVERSE = [
    "DROP TRIGGER IF EXISTS calendar_owner_change ON calendars_calendar;",
    "DROP FUNCTION IF EXISTS calendar_owner_change_check();",
    "DROP TRIGGER IF EXISTS schedule_calendar_owner ON calendars_schedule;",
    "DROP FUNCTION IF EXISTS schedule_calendar_owner_check();",
]


def _run(statements_by_vendor):  # type: ignore[no-untyped-def]
    def run(apps, schema_editor):  # type: ignore[no-untyped-def]
        vendor = schema_editor.connection.vendor
        statements = statements_by_vendor.get(vendor)
        if statements is None:
            raise RuntimeError(f"No schedule/calendar owner trigger for database {vendor!r}.")
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("calendars", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD}),
            _run({"sqlite": SQLITE_REVERSE, "postgresql": POSTGRES_REVERSE}),
        )
    ]
