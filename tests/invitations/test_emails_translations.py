"""The email strings of translations.json: every key in every language, same placeholders."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from django.conf import settings

import invitations.emails  # noqa: F401  (registers the keys its modules use)
from calendars import checks, translations

PREFIXES = ("email.", "date.", "recurrence.", "rsvp.link.")
# Punctuation and patterns that may read the same in two languages.
FORMATS = {"email.colon", "email.override.renamed", "email.override.titled"}


def _bundled() -> dict[str, dict[str, str]]:
    return json.loads(Path(settings.TRANSLATIONS_JSON_PATH).read_text(encoding="utf-8"))


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_key_used_by_email_code_and_templates_exists_in_every_language() -> None:
    data = _bundled()
    used = {k for k in checks.required_translation_keys() if k.startswith(PREFIXES)}
    assert len(used) > 150
    for language in translations.SUPPORTED_LANGUAGES:
        assert used <= data[language].keys(), sorted(used - data[language].keys())


def test_email_keys_are_the_same_in_every_language() -> None:
    data = _bundled()
    english = {k for k in data["en"] if k.startswith(PREFIXES)}
    for language in translations.SUPPORTED_LANGUAGES:
        assert {k for k in data[language] if k.startswith(PREFIXES)} == english, language


@pytest.mark.parametrize("language", ["fr", "de", "nl"])
def test_placeholders_match_english_so_formatting_never_fails(language: str) -> None:
    data = _bundled()
    for key, text in data["en"].items():
        if key.startswith(PREFIXES):
            assert _fields(data[language][key]) == _fields(text), key


@pytest.mark.parametrize("language", ["fr", "de", "nl"])
def test_sentences_are_translated_not_copied(language: str) -> None:
    data = _bundled()
    # Formats, numbers and names of zones may be the same; sentences may not.
    copied = [
        key
        for key, text in data["en"].items()
        if key.startswith(("email.", "rsvp.link.")) and " " in text and data[language][key] == text
    ]
    assert set(copied) <= FORMATS, sorted(set(copied) - FORMATS)
