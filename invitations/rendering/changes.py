"""What an update changed, for its reader: the lines under "What changed".

:func:`changes_describe` compares the REQUEST being sent with the last one its reader was
sent (:func:`invitations.selectors.previous_request_body`), VEVENT by VEVENT:

- the event the email is about (the series' master, or the reader's occurrence): its time,
  place and title;
- for a series: its rule (RRULE changed, added or removed), its removed occurrences (EXDATE
  added or taken back), its extra ones (RDATE added or removed), and its overrides (an
  occurrence moved, renamed, placed elsewhere, cancelled by ``STATUS:CANCELLED``, or back to
  the rule), each named by the occurrence's original time (RFC 5545 section 3.8.4.4);
- for a reader invited to one occurrence only (a message without master): whether *their*
  occurrence changed, so that the email says "changed one occurrence" only when it did.

Nothing is expanded: sets of dates and components are compared as they are written, so the
work is bounded by the parse budgets of both messages (calendars/ical/budgets.py), and at
most :data:`CHANGES_LISTED` lines are shown.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace

from calendars.ical import Event, EventStatus, ICalendarError, ITipMessage, recurrence_key
from calendars.translations import register_keys, translate
from invitations.rendering.dates import moment_text, when_text
from invitations.rendering.recurrence import recurrence_text

logger = logging.getLogger(__name__)

CHANGES_LISTED = 10

register_keys(
    [
        "email.changes.time",
        "email.changes.location",
        "email.changes.location_added",
        "email.changes.summary",
        "email.changes.recurrence",
        "email.changes.recurrence_added",
        "email.changes.recurrence_removed",
        "email.changes.occurrence_added",
        "email.changes.occurrence_removed",
        "email.changes.occurrence_restored",
        "email.changes.occurrence_cancelled",
        "email.changes.occurrence_moved",
        "email.changes.occurrence_renamed",
        "email.changes.occurrence_relocated",
        "email.changes.occurrence_changed",
        "email.changes.occurrence_reverted",
        "email.guests.more",
    ]
)


@dataclass(frozen=True)
class Changes:
    """``lines``: what changed, in words; ``occurrence_changed``: for a message about the
    reader's occurrence(s) only, whether one of them changed (None for a series, or when
    the versions could not be compared)."""

    lines: list[str]
    occurrence_changed: bool | None = None


def changes_describe(
    *, previous: ITipMessage, message: ITipMessage, zone: str | None, language: str
) -> Changes:
    """What changed from ``previous`` to ``message`` for a reader in ``zone``. A previous
    version that cannot be compared (an earlier, stranger version) gives no lines: it never
    stops this email (docs/design.md 1.5)."""
    try:
        return _describe(previous, message, zone=zone, language=language)
    except (ICalendarError, ValueError, ArithmeticError, LookupError, TypeError) as exc:
        logger.warning(
            "previous version not comparable error=%s; no change list", type(exc).__name__
        )
        return Changes(lines=[])


def _describe(
    previous: ITipMessage, message: ITipMessage, *, zone: str | None, language: str
) -> Changes:
    uid = message.primary.uid
    earlier = {_key(e): e for e in previous.events if e.uid == uid}
    earlier_master = earlier.get(None)
    master = message.master
    if master is None:
        # The reader is invited to some occurrences only: what matters is whether theirs did.
        changed = False
        for override in message.overrides:
            before = _baseline(earlier, earlier_master, override)
            changed = changed or before is None or _differs(before, override)
        primary = message.primary
        baseline = _baseline(earlier, earlier_master, primary)
        lines = _event_lines(baseline, primary, zone, language) if baseline else []
        return Changes(lines=_capped(lines, language), occurrence_changed=changed)
    if earlier_master is None:
        return Changes(lines=[])
    dated: list[tuple[str, str]] = [
        ("", line) for line in _event_lines(earlier_master, master, zone, language)
    ]
    dated += [("", line) for line in _rule_lines(earlier_master, master, zone, language)]
    dated += _date_lines(earlier_master, master, zone, language)
    dated += _override_lines(earlier, earlier_master, message, zone, language)
    dated.sort(key=lambda item: item[0])
    return Changes(lines=_capped([line for _, line in dated], language))


def _key(event: Event) -> str | None:
    return recurrence_key(event.recurrence_id) if event.recurrence_id is not None else None


def _capped(lines: list[str], language: str) -> list[str]:
    if len(lines) <= CHANGES_LISTED:
        return lines
    more = translate("email.guests.more", language, count=len(lines) - CHANGES_LISTED)
    return [*lines[:CHANGES_LISTED], more]


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _event_lines(previous: Event, event: Event, zone: str | None, language: str) -> list[str]:
    """The time, place and title of one VEVENT against its earlier version."""
    lines = []
    if (previous.start, previous.end) != (event.start, event.end) and previous.start is not None:
        old = when_text(previous, zone=zone, language=language).text
        lines.append(translate("email.changes.time", language, old=old))
    if not _same(previous.location, event.location):
        old_place = " ".join(previous.location.split())
        if old_place:
            lines.append(translate("email.changes.location", language, old=old_place))
        else:
            lines.append(translate("email.changes.location_added", language))
    if not _same(previous.summary, event.summary) and previous.summary.strip():
        old_title = " ".join(previous.summary.split())
        lines.append(translate("email.changes.summary", language, old=old_title))
    return lines


def _rule_only(event: Event) -> Event:
    return replace(event, rdates=(), exdates=())


def _rule_lines(previous: Event, master: Event, zone: str | None, language: str) -> list[str]:
    """RRULE changed, added or removed (RDATE and EXDATE have lines of their own)."""
    before, after = previous.rrule, master.rrule
    if before is None and after is None:
        return []
    if (
        before is not None
        and after is not None
        and replace(before, text="") == replace(after, text="")
    ):
        return []
    old = recurrence_text(_rule_only(previous), zone=zone, language=language)
    if after is None:
        return [translate("email.changes.recurrence_removed", language, old=old or "")]
    if before is None:
        new = recurrence_text(_rule_only(master), zone=zone, language=language)
        return [translate("email.changes.recurrence_added", language, repeats=new or "")]
    return [translate("email.changes.recurrence", language, old=old or "")]


def _date_lines(
    previous: Event, master: Event, zone: str | None, language: str
) -> list[tuple[str, str]]:
    """Occurrences removed (EXDATE added, RDATE taken away), restored (EXDATE taken away)
    and added (RDATE added), each with its sort key."""
    lines = []

    def keyed(values: tuple[dt.date | dt.datetime, ...]) -> dict[str, dt.date | dt.datetime]:
        return {recurrence_key(value): value for value in values}

    old_ex, new_ex = keyed(previous.exdates), keyed(master.exdates)
    old_r, new_r = keyed(previous.rdates), keyed(master.rdates)

    def text(value: dt.date | dt.datetime) -> str:
        return moment_text(value, zone=zone, language=language, with_zone=False)

    for key in (new_ex.keys() - old_ex.keys()) | (old_r.keys() - new_r.keys() - new_ex.keys()):
        value = new_ex.get(key) or old_r[key]
        lines.append(
            (key, translate("email.changes.occurrence_removed", language, original=text(value)))
        )
    for key in old_ex.keys() - new_ex.keys():
        lines.append(
            (
                key,
                translate(
                    "email.changes.occurrence_restored", language, original=text(old_ex[key])
                ),
            )
        )
    for key in new_r.keys() - old_r.keys() - new_ex.keys():
        when = moment_text(new_r[key], zone=zone, language=language)
        lines.append((key, translate("email.changes.occurrence_added", language, when=when)))
    return lines


def _length(event: Event) -> dt.timedelta | None:
    start, end = event.start, event.end
    if isinstance(start, dt.datetime) and isinstance(end, dt.datetime):
        return end - start if (start.tzinfo is None) == (end.tzinfo is None) else None
    if start is None or end is None or isinstance(start, dt.datetime):
        return None
    return None if isinstance(end, dt.datetime) else end - start


def _placed(master: Event, moment: dt.date | dt.datetime) -> Event:
    """The series' master as it stands at the occurrence ``moment`` (its RECURRENCE-ID)."""
    length = _length(master)
    return replace(
        master,
        recurrence_id=moment,
        start=moment,
        end=moment + length if length is not None else None,
        rrule=None,
        rdates=(),
        exdates=(),
    )


def _baseline(
    earlier: dict[str | None, Event], earlier_master: Event | None, override: Event
) -> Event | None:
    """What the reader was told about the occurrence of ``override`` before: its earlier
    override, else the earlier series placed there; None when they were told nothing."""
    assert override.recurrence_id is not None
    found = earlier.get(_key(override))
    if found is not None:
        return found
    if earlier_master is not None:
        return _placed(earlier_master, override.recurrence_id)
    return None


def _cancelled(event: Event) -> bool:
    return event.status.upper() == EventStatus.CANCELLED


def _differs(before: Event, after: Event) -> bool:
    return (
        (before.start, before.end) != (after.start, after.end)
        or not _same(before.summary, after.summary)
        or not _same(before.location, after.location)
        or not _same(before.description, after.description)
        or _cancelled(before) != _cancelled(after)
    )


def _override_lines(
    earlier: dict[str | None, Event],
    earlier_master: Event,
    message: ITipMessage,
    zone: str | None,
    language: str,
) -> list[tuple[str, str]]:
    """Occurrences of the series changed on their own: cancelled, moved, renamed, placed
    elsewhere or otherwise changed, and back to the series (an override taken away)."""
    master = message.master
    assert master is not None
    lines: list[tuple[str, str]] = []
    now = {_key(o): o for o in message.overrides if o.uid == master.uid}
    excluded = {recurrence_key(value) for value in master.exdates}
    for key, override in now.items():
        assert key is not None and override.recurrence_id is not None
        before = _baseline(earlier, earlier_master, override)
        if before is None or not _differs(before, override):
            continue
        original = moment_text(
            override.recurrence_id, zone=zone, language=language, with_zone=False
        )
        if _cancelled(override):
            if not _cancelled(before):
                lines.append(
                    (
                        key,
                        translate(
                            "email.changes.occurrence_cancelled", language, original=original
                        ),
                    )
                )
            continue
        if _cancelled(before):
            lines.append(
                (key, translate("email.changes.occurrence_restored", language, original=original))
            )
        said = False
        if (before.start, before.end) != (
            override.start,
            override.end,
        ) and override.start is not None:
            when = when_text(override, zone=zone, language=language).text
            lines.append(
                (
                    key,
                    translate(
                        "email.changes.occurrence_moved", language, original=original, when=when
                    ),
                )
            )
            said = True
        if not _same(before.summary, override.summary) and override.summary.strip():
            summary = " ".join(override.summary.split())
            lines.append(
                (
                    key,
                    translate(
                        "email.changes.occurrence_renamed",
                        language,
                        original=original,
                        summary=summary,
                    ),
                )
            )
            said = True
        if not _same(before.location, override.location) and override.location.strip():
            location = " ".join(override.location.split())
            lines.append(
                (
                    key,
                    translate(
                        "email.changes.occurrence_relocated",
                        language,
                        original=original,
                        location=location,
                    ),
                )
            )
            said = True
        if not said and not _cancelled(before):
            lines.append(
                (key, translate("email.changes.occurrence_changed", language, original=original))
            )
    for key, gone in earlier.items():
        if key is None or key in now or key in excluded or gone.recurrence_id is None:
            continue
        if not _differs(_placed(earlier_master, gone.recurrence_id), gone):
            continue
        original = moment_text(gone.recurrence_id, zone=zone, language=language, with_zone=False)
        lines.append(
            (key, translate("email.changes.occurrence_reverted", language, original=original))
        )
    return lines
