"""Invitation emails: from the raw iTIP body to a complete Django email (nothing is sent here).

:func:`email_build` is a pure function of its arguments, the settings and the recipient's or
organizer's stored preferences (one query at most). It chooses the kind of email from the
method and SEQUENCE (DESIGN.md 1.1), renders the subject/txt/html triple of
``templates/emails/<kind>.*`` in the recipient's language and time zone, inlines the HTML's
CSS with css-inline, and assembles the MIME structure of RFC 6047 section 2.4::

    multipart/mixed
      multipart/alternative
        text/plain
        text/html
      text/calendar; charset=utf-8; method=REQUEST   (invite.ics; method= only with iTIP on)

No value from the calendar reaches a header unchecked: CR, LF and other control characters
are removed, the subject is capped, addresses are parsed by the email package, and the HTML
escapes everything (Django's autoescape).
"""

from __future__ import annotations

import email.message
import logging
import re
import unicodedata
import zoneinfo
from dataclasses import dataclass, replace
from email.headerregistry import Address
from email.utils import parseaddr
from enum import StrEnum
from functools import cache
from typing import Any
from urllib.parse import urlencode

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import Q
from django.template.loader import render_to_string

from calendars.ical import (
    Event,
    ICalendarError,
    ITipMessage,
    Method,
    PartStat,
    build_attachment,
    clean_address,
    parse_itip,
    recurrence_key,
)
from calendars.translations import register_keys, resolve_language, translate
from invitations.rendering.dates import moment_text, when_text
from invitations.rendering.occurrences import last_end
from invitations.rendering.recurrence import recurrence_text
from invitations.tokens import rsvp_token_expiry, rsvp_token_make

logger = logging.getLogger(__name__)

__all__ = [
    "ATTACHMENT_FILENAME",
    "EmailKind",
    "RsvpAction",
    "email_build",
    "email_kind",
    "rsvp_links",
]

ATTACHMENT_FILENAME = "invite.ics"
SUBJECT_MAX_CHARS = 200
NAME_MAX_CHARS = 100
DESCRIPTION_MAX_CHARS = 10_000
GUESTS_LISTED = 20
OVERRIDES_LISTED = 10

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


class EmailKind(StrEnum):
    INVITATION = "invitation"
    UPDATE = "update"
    CANCELLATION = "cancellation"
    REPLY = "reply"


class RsvpAction(StrEnum):
    """The ``action`` of an RSVP link, named after the PARTSTAT it records."""

    ACCEPTED = "accepted"
    TENTATIVE = "tentative"
    DECLINED = "declined"


_REPLY_WORDS = {
    PartStat.ACCEPTED: "accepted",
    PartStat.TENTATIVE: "tentative",
    PartStat.DECLINED: "declined",
}

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
        "email.changes.time",
        "email.changes.location",
        "email.changes.location_added",
        "email.changes.summary",
        "email.changes.recurrence",
        "email.cancellation.occurrence",
        "email.reply.occurrence",
        "email.update.occurrence",
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
class _Preferences:
    language: str
    time_zone: str | None


def email_kind(*, method: Method, event: Event, previous_known: bool = False) -> EmailKind:
    """The kind of email for an iTIP method (DESIGN.md 1.1): REQUEST with SEQUENCE 0 is an
    invitation, a later SEQUENCE (or a known earlier version) an update."""
    if method is Method.CANCEL:
        return EmailKind.CANCELLATION
    if method is Method.REPLY:
        return EmailKind.REPLY
    if event.sequence > 0 or previous_known:
        return EmailKind.UPDATE
    return EmailKind.INVITATION


def email_build(
    *,
    body: bytes,
    method: str,
    sender: str,
    recipient: str,
    message_id: str,
    language: str | None = None,
    time_zone: str | None = None,
    previous_body: bytes | None = None,
) -> EmailMultiAlternatives:
    """The complete email for one iTIP message and one recipient, ready to send.

    ``method`` is REQUEST, REPLY or CANCEL (the callback's header; it wins over the body's
    METHOD). ``sender`` and ``recipient`` are addresses, ``mailto:`` optional. ``message_id``
    becomes the Message-ID header (the caller keeps it stable across retries). Without
    ``language``/``time_zone``, the recipient's stored preferences are used, else the
    organizer's, else English and the event's own zone. ``previous_body`` (the earlier
    version of the event, when known) lets an update say what changed.

    Raises :class:`~calendars.ical.ICalendarError` when ``body`` cannot be parsed and
    ``ValueError`` for a method other than REQUEST, REPLY or CANCEL or an unusable address.
    """
    itip_method = _method(method)
    message = parse_itip(body)
    sender_address = _address(sender, "sender")
    recipient_address = _address(recipient, "recipient")
    event = _main_event(message, itip_method)
    previous = _previous_event(previous_body, event)
    kind = email_kind(method=itip_method, event=event, previous_known=previous is not None)
    # The organizer named in the data when it is a usable address, else the party the
    # callback named: the sender of a REQUEST or CANCEL, the recipient of a REPLY.
    organizer_address = _address_or_none(event.organizer.address if event.organizer else "") or (
        sender_address if itip_method is not Method.REPLY else recipient_address
    )
    prefs = _preferences(
        recipient=recipient_address,
        organizer=organizer_address,
        language=language,
        time_zone=time_zone,
        event=event,
    )
    context = _context(
        message=message,
        event=event,
        kind=kind,
        method=itip_method,
        sender=sender_address,
        recipient=recipient_address,
        organizer_address=organizer_address,
        prefs=prefs,
        previous=previous,
    )
    subject = _header_text(
        render_to_string(f"emails/{kind.value}.subject.txt", context), SUBJECT_MAX_CHARS
    )
    context["subject"] = subject
    text = _tidy_text(render_to_string(f"emails/{kind.value}.txt", context))
    html = _inliner().inline(render_to_string(f"emails/{kind.value}.html", context))

    # The display name is the person's CN only: an address shown as a name looks forged.
    if itip_method is Method.REPLY:
        author_name, reply_to = context["attendee_cn"], sender_address
    else:
        author_name, reply_to = context["organizer_cn"], organizer_address
    mail = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=_from_header(author_name),
        to=[recipient_address],
        reply_to=[reply_to],
        headers={"Message-ID": _message_id(message_id)},
    )
    mail.attach_alternative(html, "text/html")
    mail.attach(_calendar_part(message, itip_method))
    return mail


# --- Inputs -----------------------------------------------------------------------------------


def _method(method: str) -> Method:
    try:
        value = Method(str(method).strip().upper())
    except ValueError:
        value = None
    if value not in (Method.REQUEST, Method.REPLY, Method.CANCEL):
        raise ValueError("method must be REQUEST, REPLY or CANCEL")
    assert value is not None
    return value


def _address(value: str, what: str) -> str:
    address = clean_address(value)
    _, parsed = parseaddr(address)
    if not parsed or parsed != address or address.count("@") != 1 or _CONTROL.search(address):
        raise ValueError(f"the {what} is not an email address")
    return address


def _address_or_none(value: str) -> str | None:
    try:
        return _address(value, "organizer")
    except ValueError:
        return None


def _main_event(message: ITipMessage, method: Method) -> Event:
    return message.primary


def _previous_event(previous_body: bytes | None, event: Event) -> Event | None:
    if previous_body is None:
        return None
    try:
        previous = parse_itip(previous_body)
    except ICalendarError:
        logger.warning("previous version of an event unreadable; no change list")
        return None
    return next(
        (
            e
            for e in previous.events
            if e.uid == event.uid and e.recurrence_id == event.recurrence_id
        ),
        None,
    )


def _preferences(
    *,
    recipient: str,
    organizer: str,
    language: str | None,
    time_zone: str | None,
    event: Event,
) -> _Preferences:
    """Issue 4 item 4: the recipient's stored preference, else the organizer's, else the
    event's zone and English. One query, none when both are given."""
    zone = time_zone if time_zone and _valid_zone(time_zone) else None
    chosen_language = resolve_language(language) if language else None
    if chosen_language is None or zone is None:
        from calendars.models import User

        users = {
            user.email.lower(): user
            for user in User.objects.filter(
                Q(email__iexact=recipient) | Q(email__iexact=organizer)
            ).only("email", "language", "time_zone")
        }
        for known in (users.get(recipient), users.get(organizer)):
            if known is None:
                continue
            if chosen_language is None and known.language:
                chosen_language = resolve_language(known.language)
            if zone is None and known.time_zone and _valid_zone(known.time_zone):
                zone = known.time_zone
    if zone is None:
        zone = event.time_zone
    return _Preferences(language=chosen_language or "en", time_zone=zone)


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _valid_zone(name: str) -> bool:
    return name in _zones()


# --- Context ----------------------------------------------------------------------------------


def _context(
    *,
    message: ITipMessage,
    event: Event,
    kind: EmailKind,
    method: Method,
    sender: str,
    recipient: str,
    organizer_address: str,
    prefs: _Preferences,
    previous: Event | None,
) -> dict[str, Any]:
    language, zone = prefs.language, prefs.time_zone
    organizer_cn = _name(event.organizer.name if event.organizer else "")
    organizer_name = organizer_cn or organizer_address
    summary = _plain(event.summary) or translate("email.no_title", language)
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
    description, truncated = _description(event.description)
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
        "location": _plain(event.location),
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
        "changes": [],
        "heading": "",
        "attendee_name": "",
    }
    if kind is EmailKind.REPLY:
        attendee = event.attendee(sender) or (event.attendees[0] if event.attendees else None)
        attendee_cn = _name(attendee.name) if attendee else ""
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
            if attendee and str(attendee.partstat).lower() in {p.value.lower() for p in PartStat}
            else str(attendee.partstat if attendee else "").lower(),
            heading=translate(f"email.heading.reply.{word}", language, attendee=attendee_name),
        )
        return context
    heading_key = f"email.heading.{kind.value}"
    if occurrence and kind in (EmailKind.CANCELLATION, EmailKind.UPDATE) and master is None:
        heading_key += "_occurrence"
    context["heading"] = translate(heading_key, language, organizer=organizer_name)
    if kind is EmailKind.UPDATE and previous is not None:
        context["changes"] = _changes(previous, event, zone=zone, language=language)
    if method is Method.REQUEST:
        context["rsvp"] = rsvp_links(
            message=message, event=event, attendee=recipient, organizer=organizer_address
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
        summary = _plain(override.summary)
        renamed = bool(summary) and summary != _plain(event.summary)
        if override.status == "CANCELLED":
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
    guests = []
    for attendee in event.attendees[:GUESTS_LISTED]:
        status = str(attendee.partstat).lower()
        known = status in {p.value.lower() for p in PartStat}
        guests.append(
            {
                "name": _name(attendee.name) or attendee.address,
                "address": attendee.address,
                "status": translate(f"email.partstat.{status}", language) if known else "",
            }
        )
    return guests


def _changes(previous: Event, event: Event, *, zone: str | None, language: str) -> list[str]:
    changes = []
    if (previous.start, previous.end) != (event.start, event.end):
        old = when_text(previous, zone=zone, language=language).text
        changes.append(translate("email.changes.time", language, old=old))
    if _plain(previous.location) != _plain(event.location):
        if _plain(previous.location):
            changes.append(
                translate("email.changes.location", language, old=_plain(previous.location))
            )
        else:
            changes.append(translate("email.changes.location_added", language))
    if _plain(previous.summary) != _plain(event.summary) and _plain(previous.summary):
        changes.append(translate("email.changes.summary", language, old=_plain(previous.summary)))
    if previous.rrule != event.rrule and previous.rrule is not None:
        old_repeats = recurrence_text(previous, zone=zone, language=language)
        if old_repeats:
            changes.append(translate("email.changes.recurrence", language, old=old_repeats))
    return changes


def rsvp_links(
    *, message: ITipMessage, event: Event, attendee: str, organizer: str
) -> dict[str, str] | None:
    """``{action: url}`` for Accept / Maybe / Decline (DESIGN.md 1.2), or None when the
    recipient is not an attendee of the event (the RSVP page could only refuse them).

    The token expires after the event's last occurrence plus the grace period.
    """
    if event.attendee(attendee) is None:
        return None
    expires_at = rsvp_token_expiry(last_end=last_end(message.events))
    token = rsvp_token_make(
        uid=event.uid,
        attendee=attendee,
        organizer=organizer,
        recurrence_id=recurrence_key(event.recurrence_id)
        if message.master is None and event.recurrence_id is not None
        else None,
        expires_at=expires_at,
    )
    base = f"{settings.APP_URL}/rsvp/?"
    return {
        action.value: base + urlencode({"token": token, "action": action.value})
        for action in RsvpAction
    }


# --- Text hygiene -------------------------------------------------------------------------------


def _plain(value: str) -> str:
    """Calendar text for one line: control characters become spaces, runs of space one."""
    return " ".join(_CONTROL.sub(" ", value).split())


def _name(value: str) -> str:
    return _plain(value)[:NAME_MAX_CHARS]


def _header_text(value: str, limit: int) -> str:
    text = _plain(unicodedata.normalize("NFC", value))
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _tidy_text(value: str) -> str:
    """The plain-text part: no trailing spaces, at most one empty line in a row."""
    lines = [line.rstrip() for line in value.strip().splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text) + "\n"


def _description(value: str) -> tuple[str, bool]:
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", text)
    if len(text) > DESCRIPTION_MAX_CHARS:
        return text[:DESCRIPTION_MAX_CHARS].rstrip() + "…", True
    return text, False


# --- MIME -------------------------------------------------------------------------------------


def _from_header(display_name: str) -> str:
    address = settings.CALENDAR_INVITATION_FROM_EMAIL
    name = _name(display_name)
    if not name:
        return address
    username, _, domain = address.partition("@")
    return str(Address(display_name=name, username=username, domain=domain))


def _message_id(value: str) -> str:
    text = _plain(value).replace(" ", "")
    if not text:
        raise ValueError("message_id is empty")
    if not (text.startswith("<") and text.endswith(">")):
        text = f"<{text.strip('<>')}>"
    return text[:250]


def _calendar_part(message: ITipMessage, method: Method) -> email.message.MIMEPart:
    """The text/calendar part (RFC 6047 section 2.4): ``method=`` only with iTIP enabled."""
    itip_enabled = bool(settings.CALENDAR_ITIP_ENABLED)
    data = build_attachment(message, itip_enabled=itip_enabled, method=method)
    part = email.message.MIMEPart()
    part.set_content(
        data.decode("utf-8"),
        subtype="calendar",
        charset="utf-8",
        params={"method": method.value} if itip_enabled else {},
        disposition="attachment",
        filename=ATTACHMENT_FILENAME,
    )
    return part


@cache
def _inliner() -> css_inline.CSSInliner:
    return css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)
