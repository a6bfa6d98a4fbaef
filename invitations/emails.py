"""Every email's rendering, and the calendar messages' emails (nothing is sent here).

:func:`email_build` is a pure function of its arguments, the settings and the recipient's or
organizer's stored preferences (one query at most). It chooses the kind of email from the
method and SEQUENCE (docs/design.md 1.1), renders the subject/txt/html triple of
``templates/emails/<kind>.*`` (Jinja2, the HTML written with its CSS inlined:
:mod:`invitations.rendering.templates`) in the recipient's language and time zone, and
assembles the MIME structure of RFC 6047 section 2.4::

    multipart/mixed
      multipart/alternative
        text/plain
        text/html
      text/calendar; charset=utf-8; method=REQUEST   (invite.ics; method= only with iTIP on)

No value from the calendar reaches a header unchecked: CR, LF and other control characters
are removed, the subject is capped, addresses are parsed by the email package, and the HTML
escapes everything (Jinja2's autoescape for ``.html``: :mod:`invitations.rendering.templates`).
"""

from __future__ import annotations

import logging
import traceback
import unicodedata
import zoneinfo
from collections.abc import Iterable, Mapping
from email.headerregistry import Address
from email.utils import parseaddr
from functools import cache, lru_cache
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import DatabaseError
from django.db.models import Q

from calendars.ical import (
    BudgetExceeded,
    Event,
    ICalendarError,
    ITipMessage,
    Method,
    build_attachment,
    clean_address,
    parse_itip,
)
from calendars.models import User
from calendars.translations import register_keys, resolve_language
from invitations.mime import ATTACHMENT_FILENAME, CalendarPart
from invitations.prepared import PreparedMessage
from invitations.rendering.context import (
    CONTROL_CHARACTERS,
    DESCRIPTION_MAX_CHARS,
    EmailKind,
    Preferences,
    RsvpAction,
    email_context,
    email_kind,
    name_text,
    plain_line,
    rsvp_links,
)
from invitations.rendering.templates import (
    email_template,
    email_template_keys,
    html_inlined,
    translator,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ATTACHMENT_FILENAME",
    "DESCRIPTION_MAX_CHARS",
    "EmailKind",
    "EmailNotRenderable",
    "RsvpAction",
    "email_build",
    "email_kind",
    "email_render",
    "rsvp_links",
]

SUBJECT_MAX_CHARS = 200

# The keys the email templates pass to t(), for the translations system check.
register_keys(email_template_keys())


class EmailNotRenderable(ValueError):
    """The email cannot be built from this message, and trying again cannot change that.

    ``reason`` is for operators (the delivery's dead letter): it says what is wrong with the
    message, never quoting an address or the data itself.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _where(exc: BaseException) -> str:
    """``file:line`` of the innermost frame: enough to find a bug, free of personal data."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    return f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}"


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
    prepared: PreparedMessage | None = None,
    previous: ITipMessage | None = None,
    requested_before: bool = False,
    users: Mapping[str, User] | None = None,
) -> EmailMultiAlternatives:
    """The complete email for one iTIP message and one recipient, ready to send.

    ``method`` is REQUEST, REPLY or CANCEL (the callback's header; it wins over the body's
    METHOD). ``sender`` and ``recipient`` are addresses, ``mailto:`` optional. ``message_id``
    becomes the Message-ID header (the caller keeps it stable across retries). Without
    ``language``/``time_zone``, the recipient's stored preferences are used, else the
    organizer's, else English and the event's own zone. ``previous_body`` is the last REQUEST
    Convoke sent this recipient for the event (:func:`invitations.selectors.previous_request_body`),
    None when it never sent one: a REQUEST is then their first invitation whatever its
    SEQUENCE, else an update that says what changed (without the list when the earlier
    version cannot be read or compared).

    The outbox passes what it computed once instead (docs/architecture.md, "the outbox"):
    ``prepared`` (the parsed ``body`` and its calendar attachment, :mod:`invitations.prepared`),
    ``previous`` (that earlier REQUEST, parsed), ``requested_before`` (Convoke sent this
    recipient a REQUEST for the event before, even one that cannot be read) and ``users``
    (the stored preferences of the batch's people, by lower-cased address: no query here).

    Raises :class:`EmailNotRenderable` (a ``ValueError``) for anything that retrying cannot
    fix: a body that cannot be parsed or asks for more than the budgets allow, a method other
    than REQUEST, REPLY or CANCEL, an unusable address, or any other failure of rendering
    (docs/design.md 1.5: the body was written by someone else). A database error is raised as is.
    """
    try:
        return _email_build(
            body=body,
            method=method,
            sender=sender,
            recipient=recipient,
            message_id=message_id,
            language=language,
            time_zone=time_zone,
            previous_body=previous_body,
            prepared=prepared,
            previous=previous,
            requested_before=requested_before,
            users=users,
        )
    except EmailNotRenderable:
        raise
    except DatabaseError:
        raise  # the recipient's preferences could not be read: that can get better
    except BudgetExceeded as exc:
        raise EmailNotRenderable(
            f"the event asks for more than Convoke computes ({exc.limit}): {exc}"
        ) from exc
    except ICalendarError as exc:
        raise EmailNotRenderable(f"the iCalendar body cannot be read: {exc}") from exc
    except SoftTimeLimitExceeded as exc:
        raise EmailNotRenderable(
            "rendering took longer than the worker's time limit "
            "(the event is too expensive to render)"
        ) from exc
    except ValueError as exc:
        raise EmailNotRenderable(str(exc)) from exc
    except Exception as exc:
        # The boundary of rendering untrusted data (docs/style.md rule 12 allows a broad catch only
        # at a boundary; this is one): whatever else fails here fails again on every retry, so
        # it is permanent. Only its type and place are kept; its text may quote the data.
        logger.error("email not renderable error=%s at=%s", type(exc).__name__, _where(exc))
        raise EmailNotRenderable(
            f"rendering failed ({type(exc).__name__} at {_where(exc)})"
        ) from exc


def _email_build(
    *,
    body: bytes,
    method: str,
    sender: str,
    recipient: str,
    message_id: str,
    language: str | None,
    time_zone: str | None,
    previous_body: bytes | None,
    prepared: PreparedMessage | None,
    previous: ITipMessage | None,
    requested_before: bool,
    users: Mapping[str, User] | None,
) -> EmailMultiAlternatives:
    itip_method = _method(method)
    message = prepared.message if prepared is not None else parse_itip(body)
    sender_address = _address(sender, "sender")
    recipient_address = _address(recipient, "recipient")
    event = message.primary
    if previous is None:
        previous = _previous_message(previous_body)
    kind = email_kind(
        method=itip_method,
        requested_before=requested_before or previous is not None or previous_body is not None,
    )
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
        users=users,
    )
    context = email_context(
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
    subject, text, html = email_render(template=kind.value, context=context)

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
    attachment = prepared.attachment if prepared is not None else None
    mail.attach(_calendar_part(message, itip_method, attachment=attachment))
    return mail


def email_render(*, template: str, context: dict[str, Any]) -> tuple[str, str, str]:
    """Subject, plain text and HTML of ``templates/emails/<template>.{subject.txt,txt,html}``.

    The one renderer of every email (calendar messages and booking notices alike): the
    subject is one capped line without control characters, the text is tidied, and the
    HTML (which extends ``emails/base.html``) is written with its CSS inlined (css-inline's form).
    """
    context = {**context, "t": translator(context.get("language"))}
    subject = _header_text(
        email_template(f"{template}.subject.txt").render(context), SUBJECT_MAX_CHARS
    )
    context["subject"] = subject
    text = _tidy_text(email_template(f"{template}.txt").render(context))
    html = html_inlined(email_template(f"{template}.html").render(context))
    return subject, text, html


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
    address = _usable_address(value)
    if address is None:
        raise ValueError(f"the {what} is not an email address")
    return address


@lru_cache(maxsize=4096)
def _usable_address(value: str) -> str | None:
    """The cleaned address when it is one the email package reads back as itself (the same
    addresses come back email after email: the check is made once for each)."""
    address = clean_address(value)
    _, parsed = parseaddr(address)
    if (
        not parsed
        or parsed != address
        or address.count("@") != 1
        or CONTROL_CHARACTERS.search(address)
    ):
        return None
    return address


def _address_or_none(value: str) -> str | None:
    try:
        return _address(value, "organizer")
    except ValueError:
        return None


def _previous_message(previous_body: bytes | None) -> ITipMessage | None:
    """The previous version, when it can be read within the budgets. A previous version that
    cannot (one that was dead-lettered, say) never stops this one: the email is then built
    without the list of changes."""
    if previous_body is None:
        return None
    try:
        return parse_itip(previous_body)
    except ICalendarError:
        logger.warning("previous version of an event unreadable; no change list")
        return None


def _preferences(
    *,
    recipient: str,
    organizer: str,
    language: str | None,
    time_zone: str | None,
    event: Event,
    users: Mapping[str, User] | None = None,
) -> Preferences:
    """Issue 4 item 4: the recipient's stored preference, else the organizer's, else the
    event's zone and English. One query, none when both are given or ``users`` (the stored
    users of a whole batch, by lower-cased address) is."""
    zone = time_zone if time_zone and _valid_zone(time_zone) else None
    chosen_language = resolve_language(language) if language else None
    if chosen_language is None or zone is None:
        if users is None:
            users = users_by_address([recipient, organizer])
        for known in (users.get(recipient), users.get(organizer)):
            if known is None:
                continue
            if chosen_language is None and known.language:
                chosen_language = resolve_language(known.language)
            if zone is None and known.time_zone and _valid_zone(known.time_zone):
                zone = known.time_zone
    if zone is None:
        zone = event.time_zone
    return Preferences(language=chosen_language or "en", time_zone=zone)


def users_by_address(addresses: Iterable[str]) -> dict[str, User]:
    """The stored users whose address is one of ``addresses`` (compared without case), by
    lower-cased address, with their language and zone: one query."""
    wanted = sorted({address.lower() for address in addresses if address})
    if not wanted:
        return {}
    condition = Q()
    for address in wanted:
        condition |= Q(email__iexact=address)
    return {
        user.email.lower(): user
        for user in User.objects.filter(condition).only("email", "language", "time_zone")
    }


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _valid_zone(name: str) -> bool:
    return name in _zones()


# --- Text hygiene -------------------------------------------------------------------------------


def _header_text(value: str, limit: int) -> str:
    text = plain_line(unicodedata.normalize("NFC", value))
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _tidy_text(value: str) -> str:
    """The plain-text part: no trailing spaces, at most one empty line in a row."""
    lines = []
    empty = False
    for line in value.strip().splitlines():
        line = line.rstrip()
        if not line and empty:
            continue
        empty = not line
        lines.append(line)
    return "\n".join(lines) + "\n"


# --- MIME -------------------------------------------------------------------------------------


def _from_header(display_name: str) -> str:
    address = settings.CALENDAR_INVITATION_FROM_EMAIL
    name = name_text(display_name)
    if not name:
        return address
    username, _, domain = address.partition("@")
    return str(Address(display_name=name, username=username, domain=domain))


def _message_id(value: str) -> str:
    """``<id>`` with only the characters of RFC 5322's msg-id (no way to smuggle a header)."""
    first_line = (value.strip().splitlines() or [""])[0]
    inner = "".join(c for c in first_line.strip().strip("<>") if c in _MSG_ID_CHARACTERS)[:240]
    if not inner:
        raise ValueError("message_id is empty")
    return f"<{inner}>"


_MSG_ID_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~.@-"
)


def _calendar_part(
    message: ITipMessage, method: Method, *, attachment: bytes | None = None
) -> CalendarPart:
    """The text/calendar part (RFC 6047 section 2.4): ``method=`` only with iTIP enabled.
    ``attachment`` is its body when already built (:mod:`invitations.prepared`)."""
    itip_enabled = bool(settings.CALENDAR_ITIP_ENABLED)
    if attachment is None:
        attachment = build_attachment(message, itip_enabled=itip_enabled, method=method)
    return CalendarPart(
        attachment, method=method.value if itip_enabled else None, filename=ATTACHMENT_FILENAME
    )
