"""The scheduling callback's headers (docs/design.md 1.1), newer ``X-LS-*`` names first.

| what       | La Suite plugin     | older servers         |
| ---        | ---                 | ---                   |
| sender     | ``X-LS-Sender``     | ``X-CalDAV-Sender``   |
| recipient  | ``X-LS-Recipient``  | ``X-CalDAV-Recipient``|
| method     | ``X-LS-Method``     | ``X-CalDAV-Method``   |
| mailbox    | ``X-LS-Is-Mailbox`` | (absent: false)       |
| org        | ``X-LS-Org-Id``     | (absent)              |

Addresses come as ``mailto:alice@example.org``, or bare when a deployment strips the scheme;
the scheme is matched case-insensitively and addresses are lower-cased.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from calendars.ical import ITIP_EMAIL_METHODS, Method

SENDER_HEADERS = ("X-LS-Sender", "X-CalDAV-Sender")
RECIPIENT_HEADERS = ("X-LS-Recipient", "X-CalDAV-Recipient")
METHOD_HEADERS = ("X-LS-Method", "X-CalDAV-Method")
MAILBOX_HEADER = "X-LS-Is-Mailbox"
ORG_HEADER = "X-LS-Org-Id"
MAX_ADDRESS_LENGTH = 254
MAX_ORG_ID_LENGTH = 255
_CONTROL_CHARACTERS = frozenset(chr(code) for code in range(32)) | {"\x7f"}


class CallbackHeaderError(ValueError):
    """A header is missing or malformed; the message names it and is safe to return."""


@dataclass(frozen=True)
class CallbackHeaders:
    sender: str
    recipient: str
    method: Method
    is_mailbox: bool
    org_id: str


def _first(headers: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str | None]:
    for name in names:
        if name in headers:
            return name, headers[name]
    return names[0], None


def _has_control_characters(value: str) -> bool:
    return any(character in _CONTROL_CHARACTERS for character in value)


def address_parse(value: str, *, header: str) -> str:
    """``mailto:Alice@Example.org`` or ``alice@example.org`` -> ``alice@example.org``."""
    if _has_control_characters(value):
        raise CallbackHeaderError(f"{header} contains control characters (CR, LF, ...).")
    text = value.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:].strip()
    if not text:
        raise CallbackHeaderError(f"{header} is empty.")
    if len(text) > MAX_ADDRESS_LENGTH:
        raise CallbackHeaderError(f"{header} is longer than {MAX_ADDRESS_LENGTH} characters.")
    try:
        validate_email(text)
    except ValidationError:
        raise CallbackHeaderError(
            f"{header} is not an email address (expected mailto:user@example.org)."
        ) from None
    return text.lower()


def callback_headers_parse(headers: Mapping[str, str]) -> CallbackHeaders:
    """Read and check the callback headers; raises :class:`CallbackHeaderError`."""
    values = {}
    for key, names in (("sender", SENDER_HEADERS), ("recipient", RECIPIENT_HEADERS)):
        name, raw = _first(headers, names)
        if raw is None:
            raise CallbackHeaderError(f"The {name} header is missing.")
        values[key] = address_parse(raw, header=name)

    method_name, method_raw = _first(headers, METHOD_HEADERS)
    if method_raw is None:
        raise CallbackHeaderError(f"The {method_name} header is missing.")
    if _has_control_characters(method_raw):
        raise CallbackHeaderError(f"{method_name} contains control characters (CR, LF, ...).")
    method = next((m for m in ITIP_EMAIL_METHODS if m.value == method_raw.strip().upper()), None)
    if method is None:
        raise CallbackHeaderError(
            f"{method_name} must be one of {', '.join(ITIP_EMAIL_METHODS)}; "
            "other iTIP methods are not delivered by email."
        )

    mailbox_raw = headers.get(MAILBOX_HEADER, "")
    if _has_control_characters(mailbox_raw):
        raise CallbackHeaderError(f"{MAILBOX_HEADER} contains control characters (CR, LF, ...).")
    org_id = headers.get(ORG_HEADER, "")
    if _has_control_characters(org_id):
        raise CallbackHeaderError(f"{ORG_HEADER} contains control characters (CR, LF, ...).")
    org_id = org_id.strip()
    if len(org_id) > MAX_ORG_ID_LENGTH:
        raise CallbackHeaderError(f"{ORG_HEADER} is longer than {MAX_ORG_ID_LENGTH} characters.")
    return CallbackHeaders(
        sender=values["sender"],
        recipient=values["recipient"],
        method=method,
        # The plugin sends exactly "true" for a calendar linked to a Messages mailbox.
        is_mailbox=mailbox_raw.strip().lower() == "true",
        org_id=org_id,
    )
