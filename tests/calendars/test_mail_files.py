"""The embedded default mail route writes one file per email (README: ``var/mail/``)."""

from __future__ import annotations

import email
import importlib
from email import policy
from pathlib import Path

from django.core.mail import EmailMessage, mailers
from pytest_django import Settings as SettingsWrapper


def _emails(folder: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for path in sorted(folder.iterdir())
    ]


def test_file_route_writes_one_file_per_email(settings: SettingsWrapper, tmp_path: Path) -> None:
    # What settings.py configures for the file route (the test runner swaps in locmem).
    configured = importlib.import_module("calendars.settings")
    assert configured.MAIL_ROUTE == "file"
    backend = configured.MAILERS["default"]["BACKEND"]
    settings.MAILERS = {"default": {"BACKEND": backend, "OPTIONS": {"file_path": str(tmp_path)}}}
    # Several emails on one connection, then many connections within the same second.
    batch = [EmailMessage(f"batch {n}", "body", to=[f"b{n}@example.net"]) for n in range(5)]
    assert mailers["default"].send_messages(batch) == 5
    for n in range(40):
        message = EmailMessage(f"single {n}", "body", to=[f"s{n}@example.net"])
        assert mailers["default"].send_messages([message]) == 1
    written = _emails(tmp_path)
    assert len(written) == 45
    assert sorted(str(m["Subject"]) for m in written) == sorted(
        [f"batch {n}" for n in range(5)] + [f"single {n}" for n in range(40)]
    )
    assert all(path.suffix == ".eml" for path in tmp_path.iterdir())
