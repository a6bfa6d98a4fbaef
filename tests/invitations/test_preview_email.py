"""``manage.py preview_email`` writes the HTML, text and .eml of an email."""

from __future__ import annotations

import email
import email.policy
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

PROJECT_DIR = Path(__file__).resolve().parents[2]
SAMPLE = PROJECT_DIR / "samples" / "invitation.ics"

pytestmark = pytest.mark.django_db


def test_preview_writes_html_text_and_eml_in_the_asked_language(tmp_path: Path) -> None:
    out = io.StringIO()
    call_command(
        "preview_email",
        str(SAMPLE),
        "--method",
        "REQUEST",
        "--lang",
        "fr",
        "--tz",
        "Europe/Paris",
        "--out",
        str(tmp_path),
        stdout=out,
    )
    html = (tmp_path / "invitation.request.fr.html").read_text()
    text = (tmp_path / "invitation.request.fr.txt").read_text()
    parsed = email.message_from_bytes(
        (tmp_path / "invitation.request.fr.eml").read_bytes(), policy=email.policy.default
    )
    assert '<html lang="fr"' in html
    assert "Project kick-off" in text and "14:00" in text
    assert parsed["To"] == "bob@example.net"
    assert "Project kick-off" in parsed["Subject"]
    calendar_parts = [p for p in parsed.walk() if p.get_content_type() == "text/calendar"]
    assert len(calendar_parts) == 1
    assert "Subject:" in out.getvalue()


def test_preview_refuses_a_file_that_is_not_icalendar(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ics"
    junk.write_bytes(b"\x00\xffnot a calendar")
    with pytest.raises(CommandError, match="not usable iCalendar"):
        call_command("preview_email", str(junk), "--out", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_preview_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="cannot read"):
        call_command("preview_email", str(tmp_path / "nope.ics"), "--out", str(tmp_path))


def test_preview_renders_an_update_with_what_changed_when_given_the_previous_version(
    tmp_path: Path,
) -> None:
    moved = tmp_path / "moved.ics"
    moved.write_bytes(
        SAMPLE.read_bytes()
        .replace(b"LOCATION:Room 4", b"LOCATION:Room 12")
        .replace(b"SEQUENCE:0", b"SEQUENCE:1")
    )
    call_command(
        "preview_email",
        str(moved),
        "--previous",
        str(SAMPLE),
        "--out",
        str(tmp_path),
        stdout=io.StringIO(),
    )
    text = (tmp_path / "moved.request.en.txt").read_text()
    assert "The place changed (it was Room 4)." in text
    call_command(
        "preview_email", str(moved), "--out", str(tmp_path / "first"), stdout=io.StringIO()
    )
    assert "changed" not in (tmp_path / "first" / "moved.request.en.txt").read_text()
