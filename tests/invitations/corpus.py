"""The shared corpus as iTIP bodies: every .ics file, plus the calendar part of each .eml."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

from tests.conftest import CORPUS_DIR


def corpus_bodies() -> list[tuple[str, bytes]]:
    """``(name, body)`` for every corpus file; an .eml gives its first text/calendar part."""
    folder = CORPUS_DIR / "ics"
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        if path.suffix == ".eml":
            calendar = _calendar_part(data)
            if calendar is None:
                continue
            found.append((path.name + "#text-calendar", calendar))
        else:
            found.append((path.name, data))
    return found


def _calendar_part(data: bytes) -> bytes | None:
    message = email.message_from_bytes(data, policy=email.policy.default)
    for part in message.walk():
        is_ics = (part.get_filename() or "").lower().endswith(".ics")
        if part.get_content_type() == "text/calendar" or is_ics:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload
    return None


def corpus_path(name: str) -> Path:
    return CORPUS_DIR / "ics" / name
