"""translations.json: every language has the same keys; the ``{% t %}`` tag renders them."""

from __future__ import annotations

import json
from pathlib import Path

from django.template import Context, Template

from calendars import translations

PROJECT_DIR = Path(__file__).resolve().parents[2]


def test_every_language_has_identical_keys() -> None:
    data = json.loads((PROJECT_DIR / "translations.json").read_text(encoding="utf-8"))
    assert set(data) >= set(translations.SUPPORTED_LANGUAGES)
    reference = set(data["en"])
    for language, strings in data.items():
        assert set(strings) == reference, language
        assert all(value.strip() for value in strings.values()), language


def test_tag_renders_in_the_context_language_and_escapes() -> None:
    template = Template('{% t "page.footer" %}|{% t "page.product_name" as name %}[{{ name }}]')
    french = template.render(Context({"language": "fr"}))
    assert french.startswith("Envoyé par Convoke")
    assert "d&#x27;invitations" in french
    assert french.endswith("[Convoke]")


def test_unknown_language_falls_back_to_english() -> None:
    assert translations.resolve_language("pt-BR") == "en"
    assert translations.resolve_language("fr-CA") == "fr"
    assert translations.translate("page.product_name", "xx") == "Convoke"
