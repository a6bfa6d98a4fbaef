"""What an email says: the template context of one iTIP message for one reader.

:func:`email_context` turns a parsed message into the values the subject/txt/html templates
of ``templates/emails/`` show: the kind, the headline, the time in the reader's zone (and the
event's own when another), the repetition in words, changed occurrences, the change list of
an update, the guests, and the RSVP links of a REQUEST. Every value from the calendar is
made single-line and bounded here; the templates escape it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any
from urllib.parse import quote_plus, urlencode

from django.conf import settings
from django.utils import timezone

from calendars.ical import (
    Event,
    EventStatus,
    ITipMessage,
    Method,
    PartStat,
    recurrence_key,
)
from calendars.translations import register_keys, strings_for, translate
from invitations.answers import RsvpAction
from invitations.rendering.changes import Changes, changes_describe
from invitations.rendering.dates import moment_text, when_text
from invitations.rendering.occurrences import last_end
from invitations.rendering.recurrence import recurrence_text
from invitations.tokens import rsvp_token_expiry, rsvp_token_make

logger = logging.getLogger(__name__)

NAME_MAX_CHARS = 100
DESCRIPTION_MAX_CHARS = 10_000
GUESTS_LISTED = 20
OVERRIDES_LISTED = 10

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_DESCRIPTION_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class EmailKind(StrEnum):
    INVITATION = "invitation"
    UPDATE = "update"
    CANCELLATION = "cancellation"
    REPLY = "reply"


_REPLY_WORDS = {action.partstat: action.value for action in RsvpAction}
_PARTSTAT_WORDS = frozenset(p.value.lower() for p in PartStat)

register_keys(
    [
        "email.subject.invitation",
        "email.subject.update",
        "email.subject.cancellation",
        "email.subject.cancellation_occurrence",
        "email.heading.invitation",
        "email.heading.update",
        "email.heading.update_occurrence",
        "email.heading.cancellation",
        "email.heading.cancellation_occurrence",
        "email.no_title",
        "email.cancellation.occurrence",
        "email.reply.occurrence",
        "email.update.occurrence",
        "email.update.occurrence_unchanged",
        "email.over",
        "email.guests.more",
        "email.override.moved",
        "email.override.cancelled",
        "email.override.renamed",
        "email.override.titled",
        "email.override.changed",
    ]
    + [f"email.subject.reply.{w}" for w in (*_REPLY_WORDS.values(), "other")]
    + [f"email.heading.reply.{w}" for w in (*_REPLY_WORDS.values(), "other")]
    + [f"email.partstat.{p.value.lower()}" for p in PartStat]
)


@dataclass(frozen=True)
class Preferences:
    """The reader's language and IANA time zone (None: the event's own zone)."""

    language: str
    time_zone: str | None


def email_kind(*, method: Method, requested_before: bool) -> EmailKind:
    """The kind of email for an iTIP method (docs/design.md 1.1). A REQUEST is an update only
    when Convoke sent this recipient a REQUEST for the event before (``requested_before``);
    otherwise it is their first invitation, whatever its SEQUENCE: a server sends an
    attendee added later the event's current SEQUENCE (docs/messages-and-caldav.md), and an
    update to someone whose earlier REQUEST is unknown reads as an invitation too."""
    if method is Method.CANCEL:
        return EmailKind.CANCELLATION
    if method is Method.REPLY:
        return EmailKind.REPLY
    return EmailKind.UPDATE if requested_before else EmailKind.INVITATION


def email_context(
    *,
    message: ITipMessage,
    event: Event,
    kind: EmailKind,
    method: Method,
    sender: str,
    recipient: str,
    organizer_address: str,
    prefs: Preferences,
    previous: ITipMessage | None,
) -> dict[str, Any]:
    """The template context of ``message`` for one reader. ``previous`` is the last REQUEST
    this reader was sent for the event (an update says what changed from it), None when
    unknown or unreadable."""
    language, zone = prefs.language, prefs.time_zone
    organizer_cn = name_text(event.organizer.name if event.organizer else "")
    organizer_name = organizer_cn or organizer_address
    summary = plain_line(event.summary) or translate("email.no_title", language)
    if event.start is None and event.recurrence_id is not None:
        # A CANCEL or REPLY for one occurrence may leave DTSTART out; RECURRENCE-ID is when
        # that occurrence was planned (RFC 5545 section 3.8.4.4).
        when = when_text(
            replace(event, start=event.recurrence_id, end=None), zone=zone, language=language
        )
    elif event.start is None:
        when = None  # a REPLY or CANCEL may leave the time out (RFC 5546 section 3.2)
    else:
        when = when_text(event, zone=zone, language=language)
    occurrence = occurrence_date = None
    if event.recurrence_id is not None:
        occurrence = moment_text(event.recurrence_id, zone=zone, language=language)
        occurrence_date = moment_text(
            event.recurrence_id, zone=zone, language=language, with_zone=False
        )
    master = message.master
    repeats = recurrence_text(master, zone=zone, language=language) if master else None
    description, truncated = description_text(event.description)
    context: dict[str, Any] = {
        "language": language,
        "kind": kind.value,
        "summary": summary,
        "organizer_name": organizer_name,
        "organizer_cn": organizer_cn,
        "attendee_cn": "",
        "organizer_address": organizer_address,
        "recipient": recipient,
        "when": when.text if when else None,
        "when_original": when.original if when else None,
        "shown_start": when.start if when else None,
        "time_zone": zone,
        "repeats": repeats,
        "occurrence": occurrence,
        "occurrence_date": occurrence_date,
        "occurrence_only": occurrence is not None and master is None,
        "location": plain_line(event.location),
        "url": event.url,
        "conference_url": event.conference_url,
        "description": description,
        "description_truncated": truncated,
        "guests": _guests(event, language),
        "guests_more": max(0, len(event.attendees) - GUESTS_LISTED),
        "overrides": _overrides(message, event, zone=zone, language=language)
        if kind is not EmailKind.REPLY
        else [],
        "rsvp": None,
        "over": False,
        "changes": [],
        "heading": "",
        "attendee_name": "",
    }
    if kind is EmailKind.REPLY:
        attendee = event.attendee(sender) or (event.attendees[0] if event.attendees else None)
        attendee_cn = name_text(attendee.name) if attendee else ""
        attendee_name = attendee_cn or (attendee.address if attendee else sender)
        word = (
            _REPLY_WORDS.get(PartStat(attendee.partstat), "other")
            if (attendee and attendee.partstat in set(PartStat))
            else "other"
        )
        context.update(
            attendee_name=attendee_name,
            attendee_cn=attendee_cn,
            reply_word=word,
            answer=translate(f"email.partstat.{str(attendee.partstat).lower()}", language)
            if attendee and str(attendee.partstat).lower() in _PARTSTAT_WORDS
            else str(attendee.partstat if attendee else "").lower(),
            heading=translate(f"email.heading.reply.{word}", language, attendee=attendee_name),
        )
        return context
    changes = Changes(lines=[])
    if kind is EmailKind.UPDATE and previous is not None:
        changes = changes_describe(previous=previous, message=message, zone=zone, language=language)
    context["changes"] = changes.lines
    # "Changed one occurrence" only when the reader's occurrence did change (issue 13).
    context["occurrence_changed"] = changes.occurrence_changed
    heading_key = f"email.heading.{kind.value}"
    if (
        occurrence
        and master is None
        and (
            kind is EmailKind.CANCELLATION
            or (kind is EmailKind.UPDATE and changes.occurrence_changed)
        )
    ):
        heading_key += "_occurrence"
    context["heading"] = translate(heading_key, language, organizer=organizer_name)
    if method is Method.REQUEST:
        # Issue 13, finding 5: links to an event already over could only answer 410.
        ends = last_end(message.events)
        context["over"] = ends is not None and ends <= timezone.now()
        if not context["over"]:
            context["rsvp"] = rsvp_links(
                message=message,
                event=event,
                attendee=recipient,
                organizer=organizer_address,
                ends=ends,
            )
    return context


def _overrides(message: ITipMessage, event: Event, *, zone: str | None, language: str) -> list[str]:
    """One line per occurrence of the series that differs from the rule (RECURRENCE-ID)."""
    if event.recurrence_id is not None:
        return []
    lines = []
    for override in message.overrides:
        if override.uid != event.uid or override.recurrence_id is None:
            continue
        original = moment_text(
            override.recurrence_id, zone=zone, language=language, with_zone=False
        )
        summary = plain_line(override.summary)
        renamed = bool(summary) and summary != plain_line(event.summary)
        if override.status == EventStatus.CANCELLED:
            line = translate("email.override.cancelled", language, original=original)
        elif override.start is not None and override.start != override.recurrence_id:
            when = when_text(override, zone=zone, language=language).text
            line = translate("email.override.moved", language, original=original, when=when)
            if renamed:
                line = translate("email.override.renamed", language, line=line, summary=summary)
        elif renamed:
            line = translate("email.override.titled", language, original=original, summary=summary)
        else:
            line = translate("email.override.changed", language, original=original)
        lines.append(line)
    lines.sort()
    return lines[:OVERRIDES_LISTED] + (
        [translate("email.guests.more", language, count=len(lines) - OVERRIDES_LISTED)]
        if len(lines) > OVERRIDES_LISTED
        else []
    )


def _guests(event: Event, language: str) -> list[dict[str, str]]:
    strings = strings_for(language)
    guests = []
    for attendee in event.attendees[:GUESTS_LISTED]:
        status = str(attendee.partstat).lower()
        key = f"email.partstat.{status}"
        guests.append(
            {
                "name": name_text(attendee.name) or attendee.address,
                "address": attendee.address,
                "status": (strings.get(key) or key) if status in _PARTSTAT_WORDS else "",
            }
        )
    return guests


def rsvp_links(
    *, message: ITipMessage, event: Event, attendee: str, organizer: str, ends: dt.datetime | None
) -> dict[str, str] | None:
    """``{action: url}`` for Accept / Maybe / Decline (docs/design.md 1.2), or None when the
    recipient is not an attendee of the event (the RSVP page could only refuse them).

    The token expires after the event's last occurrence (``ends``, from
    :func:`invitations.rendering.occurrences.last_end`) plus the grace period.
    """
    if event.attendee(attendee) is None:
        return None
    expires_at = rsvp_token_expiry(last_end=ends)
    token = rsvp_token_make(
        uid=event.uid,
        attendee=attendee,
        organizer=organizer,
        recurrence_id=recurrence_key(event.recurrence_id)
        if message.master is None and event.recurrence_id is not None
        else None,
        expires_at=expires_at,
    )
    # urlencode({"token": token, "action": action}), with the token quoted once for the three.
    base = f"{settings.APP_URL}/rsvp/?token={quote_plus(token)}&"
    return {action: base + query for action, query in _ACTION_QUERIES}


_ACTION_QUERIES = tuple(
    (action.value, urlencode({"action": action.value})) for action in RsvpAction
)


# --- Text hygiene -------------------------------------------------------------------------------


def plain_line(value: str) -> str:
    """Calendar text for one line: control characters become spaces, runs of space one."""
    if not value.isprintable():  # else it holds none of CONTROL_CHARACTERS (all unprintable)
        value = CONTROL_CHARACTERS.sub(" ", value)
    return " ".join(value.split())


def name_text(value: str) -> str:
    return plain_line(value)[:NAME_MAX_CHARS]


def description_text(value: str) -> tuple[str, bool]:
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    text = _DESCRIPTION_CONTROLS.sub("", text)
    if len(text) > DESCRIPTION_MAX_CHARS:
        return text[:DESCRIPTION_MAX_CHARS].rstrip() + "…", True
    return text, False
