"""Changes to a booking schedule (a subscriber's public booking page)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from calendars import hooks
from calendars.models import Calendar, Schedule

SCHEDULE_FIELDS = frozenset({"title", "auto_confirm", "slot_minutes", "active", "calendar_id"})


class ScheduleUpdateInvalid(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def schedule_update(*, schedule_id: int, changes: dict[str, Any]) -> Schedule:
    """Change a schedule. A new calendar must be the owner's and connected.

    A change of calendar, or of ``active``, may change which calendars must be watched: the
    Google app re-derives the channels of the old and the new calendar after the commit
    (:func:`calendars.hooks.calendars_watch_changed`; it enqueues, never calls Google here).
    """
    unknown = set(changes) - SCHEDULE_FIELDS
    if unknown:
        raise ScheduleUpdateInvalid(sorted(unknown)[0], "This field cannot be changed.")
    with transaction.atomic():
        schedule = Schedule.objects.select_for_update().get(pk=schedule_id)
        old_calendar_id = schedule.calendar_id
        if "calendar_id" in changes and changes["calendar_id"] != old_calendar_id:
            calendar = Calendar.objects.filter(
                pk=changes["calendar_id"], owner_id=schedule.owner_id
            ).first()
            if calendar is None:
                raise ScheduleUpdateInvalid("calendar", "Unknown calendar.")
            if not calendar.connected:
                raise ScheduleUpdateInvalid("calendar", "This calendar is disconnected.")
        if "slot_minutes" in changes and not 5 <= int(changes["slot_minutes"]) <= 24 * 60:
            raise ScheduleUpdateInvalid("slot_minutes", "Between 5 and 1440 minutes.")
        for name, value in changes.items():
            setattr(schedule, name, value)
        schedule.save(update_fields=[*changes, "updated_at"])
        if schedule.calendar_id != old_calendar_id or "active" in changes:
            hooks.calendars_watch_changed(calendar_ids=[old_calendar_id, schedule.calendar_id])
    return schedule
