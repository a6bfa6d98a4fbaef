"""The email templates' Jinja2 engine: what Django's template language did, at less cost.

The byte-for-byte equality of the emails with those of Django's engine was checked when the
templates moved (every kind, the corpus, four languages; see the commit); these tests keep
the engine's own promises: escaping for HTML only, Django's ``linebreaksbr``, ``t()`` with
the context's language, and every key of the templates visible to the translations check.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import pytest
from django.conf import settings
from django.template.defaultfilters import linebreaksbr as django_linebreaksbr
from pytest_django import Settings as SettingsWrapper

from calendars import checks, translations
from invitations.emails import email_render
from invitations.rendering.templates import (
    email_environment,
    email_template,
    email_template_keys,
    translator,
)

HOSTILE = "a <b>\"c\"</b> & 'd'\r\ne\rf\n\u00a0g"


def _bundled() -> dict[str, dict[str, str]]:
    return json.loads(Path(settings.TRANSLATIONS_JSON_PATH).read_text(encoding="utf-8"))


def test_keys_of_every_email_template_are_found_when_reading_their_syntax_trees() -> None:
    keys = email_template_keys()
    # One from each family: a kind's kicker, the details, the RSVP links, the bookings' and
    # Google's notices.
    assert {
        "email.kind.invitation",
        "email.label.when",
        "rsvp.link.accept",
        "booking.email.confirm",
        "google.revoked.button",
        "page.product_name",
    } <= keys


def test_translations_check_requires_the_keys_of_the_email_templates() -> None:
    assert email_template_keys() <= checks.required_translation_keys()
    data = _bundled()
    for language in translations.SUPPORTED_LANGUAGES:
        assert email_template_keys() <= data[language].keys(), language


def test_key_scan_refuses_a_key_that_is_not_a_literal_when_a_template_computes_it(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "emails"
    folder.mkdir()
    (folder / "broken.txt").write_text('{{ t("email." ~ kind) }}', encoding="utf-8")
    env = email_environment().overlay(loader=jinja2.FileSystemLoader(tmp_path))
    with pytest.raises(ValueError, match=r"emails/broken\.txt"):
        email_template_keys(env=env)


def test_html_escapes_values_and_text_does_not_when_rendered_from_one_context() -> None:
    part = email_template("_details.html").render(
        {"t": translator("en"), "organizer_name": HOSTILE, "organizer_address": "o@example.org"}
    )
    assert "&lt;b&gt;" in part and "<b>" not in part
    text = email_template("_details.txt").render(
        {"t": translator("en"), "organizer_name": HOSTILE, "organizer_address": "o@example.org"}
    )
    assert HOSTILE.replace("\r\n", "\n") in text.replace("\r\n", "\n")


@pytest.mark.parametrize("value", [HOSTILE, "", "one\n\ntwo", "\r\r\n\n"])
def test_linebreaksbr_is_djangos_when_escaped(value: str) -> None:
    template = email_environment().from_string(
        "{% autoescape true %}{{ value|linebreaksbr }}{% endautoescape %}"
    )
    ours = template.render(value=value)
    # Django escapes ' as &#x27; and " as &quot;, markupsafe as &#39; and &#34;: the same
    # characters once css-inline has parsed and written the HTML again.
    expected = str(django_linebreaksbr(value, autoescape=True))
    assert ours.replace("&#39;", "&#x27;").replace("&#34;", "&quot;") == expected


@pytest.mark.parametrize("language", ["en", "fr", "de", "nl", "fr-CA", "pt", None])
def test_translator_says_what_translate_says_when_bound_to_a_language(
    language: str | None,
) -> None:
    t = translator(language)
    for key in sorted(email_template_keys()):
        assert t(key) == translations.translate(key, language), key
    assert t("email.guests.more", count=3) == translations.translate(
        "email.guests.more", language, count=3
    )
    assert t("no.such.key") == "no.such.key"


def test_strings_fall_back_to_english_when_a_language_leaves_a_string_empty(
    settings: SettingsWrapper, tmp_path: Path
) -> None:
    data = _bundled()
    data["fr"]["email.colon"] = ""
    path = tmp_path / "translations.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    settings.TRANSLATIONS_JSON_PATH = path
    assert translations.strings_for("fr")["email.colon"] == data["en"]["email.colon"]
    assert translations.translate("email.colon", "fr") == data["en"]["email.colon"]
    assert translator("fr")("email.colon") == data["en"]["email.colon"]


def test_google_notice_renders_in_its_language_when_rendered_by_the_email_renderer() -> None:
    subject, text, html = email_render(
        template="google_account_revoked",
        context={"language": "de", "reconnect_url": "https://x.example/?a=1&b=2"},
    )
    strings = translations.strings_for("de")
    assert subject == strings["google.revoked.subject"]
    assert "https://x.example/?a=1&b=2" in text
    assert 'href="https://x.example/?a=1&amp;b=2"' in html
    assert 'lang="de"' in html
