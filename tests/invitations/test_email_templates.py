"""The email templates' Jinja2 engine: what Django's template language did, at less cost.

The byte-for-byte equality of the emails with those of Django's engine was checked when the
templates moved (every kind, the corpus, four languages; see the commit); these tests keep
the engine's own promises: escaping for HTML only, Django's ``linebreaksbr``, ``t()`` with
the context's language, and every key of the templates visible to the translations check.

The HTML templates are written in css-inline's output form (``emails/style.css`` inlined,
:mod:`invitations.rendering.templates`): inlining that stylesheet into a rendered email again
changes nothing, and the values are escaped as css-inline's serializer escapes them.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import css_inline
import jinja2
import pytest
from django.conf import settings
from django.template.defaultfilters import linebreaksbr as django_linebreaksbr
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pytest_django import Settings as SettingsWrapper

from calendars import checks, translations
from invitations.emails import email_build, email_render
from invitations.rendering.templates import (
    IncludesInlined,
    email_environment,
    email_template,
    email_template_keys,
    html_inlined,
    translator,
)

from .emails_samples import ATTENDEE, ORGANIZER, request

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


def test_includes_render_as_jinja2_renders_them_when_their_partials_are_inlined(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "emails"
    folder.mkdir()
    sources = {
        "page.html": '{% set x = 1 %}<{% include "emails/_plain.html" %}>'
        '[{% include "emails/_sets.html" %}]{{ x }}\n{% include "emails/_trims.html" %}|'
        '{% for i in [1, 2] %}{% include "emails/_item.html" %}'
        '{% include "emails/_loop.html" %}{% endfor %}',
        "_plain.html": "{{ x }} & {{ y }}\n",
        "_sets.html": "{% set x = 2 %}{{ x }}",
        "_trims.html": "{#- trims -#}\n{{ x }}",
        "_item.html": "{{ i }}",
        "_loop.html": "({{ loop }})",
    }
    for name, source in sources.items():
        (folder / name).write_text(source, encoding="utf-8")
    plain = email_environment().overlay(loader=jinja2.FileSystemLoader(tmp_path))
    inlined = email_environment().overlay(loader=IncludesInlined(jinja2.FileSystemLoader(tmp_path)))
    source = inlined.loader.get_source(inlined, "emails/page.html")[0]  # type: ignore[union-attr]
    assert "{{ y }}" in source and "{{ i }}" in source  # inlined
    for kept in ("_sets", "_trims", "_loop"):
        assert f'include "emails/{kept}.html"' in source
    for y in ("<b>", ""):
        expected = plain.get_template("emails/page.html").render(y=y)
        assert inlined.get_template("emails/page.html").render(y=y) == expected
        assert expected.startswith("<1 & ") and "[2]1\n" in expected and "|1()2()" in expected


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


# --- The HTML in css-inline's output form ------------------------------------------------------

STYLESHEET = Path(settings.BASE_DIR) / "templates" / "emails" / "style.css"
_STYLE_ATTRIBUTE = re.compile(r' style="[^"]*"')
_TAG = re.compile(r"<[a-zA-Z][^<>]*>")
_VALUE = re.compile(r"\{\{(.*?)\}\}")


def _inline(html: str) -> str:
    return css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False).inline(html)


class _Tree(HTMLParser):
    """The document as the HTML parser reads it, an element's attributes as a set: css-inline
    writes them in an order of its own each time it writes an element (it moves the last
    attribute into the place of ``class``), which no mail client reads."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[tuple[object, ...]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(("start", tag, frozenset(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.events.append(("end", tag))

    def handle_data(self, data: str) -> None:
        self.events.append(("data", data))


def _tree(html: str) -> list[tuple[object, ...]]:
    parser = _Tree()
    parser.feed(html)
    parser.close()
    return parser.events


def _with_stylesheet(html: str) -> str:
    """The email as the templates rendered it before: no style attributes, the stylesheet in
    its head (where the templates' empty line stands)."""
    stylesheet = STYLESHEET.read_text(encoding="utf-8")
    bare = _STYLE_ATTRIBUTE.sub("", html)
    assert "</title>\n\n</head>" in bare
    return bare.replace("</title>\n\n</head>", f"</title>\n<style>\n{stylesheet}</style>\n</head>")


def _emails() -> dict[str, str]:
    """The HTML of every kind of email, with hostile values where the data reaches it."""
    hostile = r"Q3 <b>\"plan\"</b> & 'co'\u00a0done"
    body = request(
        summary=hostile,
        location=hostile,
        description=r"Line <1> & \"2\"\n'3'\u00a0four",
        extra='RRULE:FREQ=WEEKLY;COUNT=3\r\nURL:https://example.org/?a=1&b="2"<x>',
    )
    htmls = {}
    for method, requested_before in (
        ("REQUEST", False),
        ("REQUEST", True),
        ("CANCEL", False),
        ("REPLY", False),
    ):
        sender, recipient = (ATTENDEE, ORGANIZER) if method == "REPLY" else (ORGANIZER, ATTENDEE)
        mail = email_build(
            body=body,
            method=method,
            sender=sender,
            recipient=recipient,
            message_id="<inlined@convoke.test>",
            language="fr",
            time_zone="Europe/Paris",
            requested_before=requested_before,
            users={},
        )
        htmls[f"{method}-{requested_before}"] = str(mail.alternatives[0][0])
    booking = {
        "language": "de",
        "title": hostile,
        "attendee_name": hostile,
        "attendee_email": "bookee@example.org",
        "description": 'a\nb <c> "d"',
        "when": "Mo. 1. Juli",
        "schedule": "Sprechstunde",
        "links": {"confirm": "https://x.example/?t=1&a=c", "deny": "https://x.example/?t=1&a=d"},
        "app_url": "https://x.example",
    }
    for template in ("booking_request", "booking_auto_confirmed"):
        htmls[template] = email_render(template=template, context=booking)[2]
    htmls["google_account_revoked"] = email_render(
        template="google_account_revoked",
        context={"language": "nl", "reconnect_url": 'https://x.example/?a=1&b="2"'},
    )[2]
    return htmls


@pytest.mark.django_db
def test_inlining_the_stylesheet_again_changes_nothing_when_an_email_is_rendered() -> None:
    for name, html in _emails().items():
        assert "<style" not in html and "&#39;" not in html and "&#34;" not in html, name
        assert _tree(_inline(html)) == _tree(html), name
        # The style attributes are exactly what css-inline makes of emails/style.css.
        assert _tree(_inline(_with_stylesheet(html))) == _tree(html), name


@pytest.mark.django_db
def test_rendered_emails_are_in_the_html_parsers_form_when_values_are_hostile() -> None:
    """Every element and value where the parser puts them: no implied <tbody>, no text moved."""
    for name, html in _emails().items():
        assert "<tbody>" in html, name
        assert html.endswith("</body></html>"), name
        assert _tree(html) == _tree(_inline(_with_stylesheet(html))), name


def test_every_value_inside_a_tag_is_escaped_for_an_attribute_when_templates_are_read() -> None:
    """Text is escaped as text (``"`` stays as itself, :func:`html_inlined`): a value inside a
    tag that forgot ``|attribute`` could close its attribute."""
    env = email_environment()
    assert env.loader is not None
    for name in env.loader.list_templates():
        if not (name.startswith("emails/") and name.endswith(".html")):
            continue
        source = env.loader.get_source(env, name)[0]
        for tag in _TAG.findall(source):
            for value in _VALUE.findall(tag):
                assert value.strip().endswith("|attribute"), f"{name}: {tag}"


@hypothesis_settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30))
def test_values_are_escaped_as_css_inline_writes_them_when_in_text_or_an_attribute(
    value: str,
) -> None:
    template = email_environment().from_string(
        "{% autoescape true %}<!DOCTYPE html><html><head><title>{{ v }}</title></head><body>"
        '<p title="{{ v|attribute }}">{{ v }}<br>{{ v|linebreaksbr }}</p></body></html>'
        "{% endautoescape %}"
    )
    rendered = template.render(v=value)
    assert html_inlined(rendered) == _inline(rendered)
