"""The email templates' engine: Jinja2, through Django's backend (``TEMPLATES``' ``emails``).

``templates/emails/`` is rendered by Jinja2 rather than Django's template language: the
outbox renders three templates per email (subject, text, HTML with ``emails/base.html`` and
its includes), and Django's engine cost about 0.9 ms of the worker's 1.5 ms per sabre-shaped
invitation, Jinja2's compiled templates a fraction of it (issue 14; the figures are in the
commit message). Every other template (pages, admin) stays with Django's engine.

The environment (:func:`environment`, named by ``TEMPLATES``) renders exactly what the Django
templates did:

- autoescape for ``.html`` only; the subject and text templates are plain text;
- ``t(key, name=value, ...)``: the string of ``translations.json`` in the context's
  ``language``, formatted with its arguments (:func:`calendars.translations.translate`);
  the language's strings are resolved once per language
  (:func:`~calendars.translations.strings_for`) and once per email (:func:`translator`, in
  the context as ``t``);
- ``linebreaksbr``: Django's filter of the same name (newlines to ``<br>``, escaped first);
- a template's last newline is kept, an unknown name renders empty (as in Django), and
  templates are compiled once per process (no reload check per email);
- ``{% include "emails/_x" %}`` is compiled as if the partial's text stood in its place
  (:class:`IncludesInlined`): an include costs a new context with a copy of the whole
  context, five of them per email (about 20 us of the 0.35 ms of rendering, issue 14), and a
  partial that sets nothing renders the same either way.

HTML in its inlined form. The HTML templates are written as css-inline wrote the emails when
it inlined ``emails/style.css`` into each one (0.15 to 0.25 ms per email, most of it parsing
and writing the HTML again, issue 14): every element carries its ``style`` attribute, tables
their ``<tbody>``, attributes in css-inline's order, the stylesheet itself gone. The values
follow its serializer (html5ever) too: inside an attribute through ``|attribute``
(:func:`attribute`: ``&``, ``"`` and no-break spaces escaped, nothing else), in text through
Jinja2's autoescape and then :func:`html_inlined` (``'`` and ``"`` written as themselves,
no-break spaces as ``&nbsp;``). The emails are byte for byte those css-inline wrote (one
holding a NUL is written by css-inline again, its elements' attributes then in another order);
``tests/invitations/test_email_templates.py`` checks that inlining ``emails/style.css`` into a
rendered email again changes nothing, and that every value inside a tag goes through
``|attribute``.

:func:`email_template_keys` reads every key a template passes to ``t()``, from the templates'
syntax trees, so that the translations system check (``calendars.checks``) verifies them:
:mod:`invitations.emails` registers them when it is imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import css_inline
import jinja2
from django.template import engines
from jinja2 import nodes
from markupsafe import Markup, escape

from calendars.translations import strings_for, translate

ENGINE_NAME = "emails"
_BR = Markup("<br>")
TEMPLATE_FOLDER = "emails"


@jinja2.pass_context
def t(context: jinja2.runtime.Context, key: str, /, **params: object) -> str:
    """``translate(key, language, **params)`` with the context's ``language``."""
    return translate(key, context.get("language"), **params)


def translator(language: str | None) -> Callable[..., str]:
    """``t`` for one language, its strings looked up once: what
    :func:`invitations.emails.email_render` puts in the context (a template calls ``t()``
    about 40 times per email)."""
    strings = strings_for(language)

    def t(key: str, /, **params: object) -> str:
        text = strings.get(key) or key
        return text.format(**params) if params else text

    return t


def attribute(value: object) -> Markup:
    """``value`` for a double-quoted attribute, escaped as css-inline's serializer escapes it
    (``&``, ``"`` and U+00A0: the HTML standard's "escaping a string" in attribute mode)."""
    escaped = str(value).replace("&", "&amp;").replace('"', "&quot;").replace("\xa0", "&nbsp;")
    return Markup(escaped)  # noqa: S704 (escaped on the line above, for an attribute)


# What the HTML parser would rewrite depending on where it stands (a NUL is dropped from
# text but becomes U+FFFD in an attribute): such an email is written again by css-inline.
_PARSER_REWRITES = ("\x00",)


def html_inlined(html: str) -> str:
    """A rendered HTML template (in its inlined form, above) with its text escaped as
    css-inline's serializer escapes it: Jinja2 escapes ``'`` and ``"`` as ``&#39;`` and
    ``&#34;`` (``&#34;`` only in text: values in attributes go through ``|attribute``), the
    serializer writes them as themselves and U+00A0 as ``&nbsp;``; line ends become LF, as
    the HTML parser reads them. The rare email holding a character the parser rewrites
    depending on its place is parsed and written by css-inline itself."""
    # Each replace is looked for first: a search for one character is much cheaper than a
    # replace that finds nothing in a string with characters beyond Latin-1.
    if "&#" in html:
        html = html.replace("&#39;", "'").replace("&#34;", '"')
    if "\xa0" in html:
        html = html.replace("\xa0", "&nbsp;")
    if "\r" in html:
        html = html.replace("\r\n", "\n").replace("\r", "\n")
    if any(character in html for character in _PARSER_REWRITES):
        return _inliner().inline(html)
    return html


@cache
def _inliner() -> css_inline.CSSInliner:
    return css_inline.CSSInliner(keep_style_tags=False, load_remote_stylesheets=False)


@jinja2.pass_eval_context
def linebreaksbr(eval_context: jinja2.nodes.EvalContext, value: object) -> str:
    """Django's ``linebreaksbr``: every newline (CR, LF or CRLF) becomes ``<br>``, the text
    escaped first where autoescape is on."""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")  # normalize_newlines
    if eval_context.autoescape:
        return escape(text).replace("\n", _BR)
    return text.replace("\n", "<br>")


def environment(**options: Any) -> jinja2.Environment:
    """The Jinja2 environment of ``TEMPLATES``' ``emails`` engine (``OPTIONS.environment``)."""
    options.pop("autoescape", None)
    options.update(keep_trailing_newline=True, undefined=jinja2.Undefined, auto_reload=False)
    if isinstance(options.get("loader"), jinja2.BaseLoader):
        options["loader"] = IncludesInlined(options["loader"])
    env = jinja2.Environment(
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        **options,
    )
    env.globals["t"] = t
    env.filters["linebreaksbr"] = linebreaksbr
    env.filters["attribute"] = attribute
    return env


_INCLUDE = re.compile(r'\{%\s*include\s+"([^"]+)"\s*%\}')
# A partial that defines or imports names (or takes part in inheritance) is left a real
# include: inlined, what it sets would be seen by the template after it. So is one with
# whitespace control, which could strip the including template's text once inlined, and one
# naming what an include does not see of its caller (its ``loop``) or sees of its own.
_SCOPED = re.compile(
    r"\{%-?\s*(?:set|macro|block|extends|import|from|call)\b|\{[%{#]-|-[%}#]\}"
    r"|\b(?:loop|self|caller|varargs|kwargs)\b"
)


class IncludesInlined(jinja2.BaseLoader):
    """``loader``'s templates with each plain ``{% include "emails/..." %}`` of theirs
    replaced by the partial's source (recursively), so that the compiled template renders
    the partial in its own frame. Only the exact form ``{% include "name" %}`` is inlined,
    and only a partial free of ``set``, ``macro``, ``block``, ``extends``, ``import``,
    ``from`` and ``call`` (which would leak or change scope), of whitespace control and of
    the names ``loop``, ``self``, ``caller``, ``varargs`` and ``kwargs`` (which an include
    does not see of the including template, or sees of its own); any other include stays one.
    Error line numbers then count in the including template's inlined text."""

    def __init__(self, loader: jinja2.BaseLoader) -> None:
        self.loader = loader

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool] | None]:
        source, filename, uptodate = self.loader.get_source(environment, template)
        return self._inlined(environment, source, depth=0), filename, uptodate

    def _inlined(self, environment: jinja2.Environment, source: str, *, depth: int) -> str:
        def partial(match: re.Match[str]) -> str:
            name = match.group(1)
            if depth >= 8 or not name.startswith(f"{TEMPLATE_FOLDER}/"):
                return match.group(0)
            text = self.loader.get_source(environment, name)[0]
            if _SCOPED.search(text):
                return match.group(0)
            return self._inlined(environment, text, depth=depth + 1)

        return _INCLUDE.sub(partial, source)

    def list_templates(self) -> list[str]:
        return self.loader.list_templates()


def email_environment() -> jinja2.Environment:
    """The environment that renders ``templates/emails/``."""
    engine = engines[ENGINE_NAME]
    env = getattr(engine, "env", None)
    if not isinstance(env, jinja2.Environment):
        raise TypeError(f"TEMPLATES' {ENGINE_NAME!r} engine is not Jinja2")
    return env


def email_template(name: str) -> jinja2.Template:
    """The compiled template ``emails/<name>`` (compiled once per process)."""
    return email_environment().get_template(f"{TEMPLATE_FOLDER}/{name}")


def _email_template_sources(env: jinja2.Environment) -> Iterator[tuple[str, str]]:
    loader = env.loader
    assert loader is not None
    if isinstance(loader, IncludesInlined):
        loader = loader.loader  # each template as written, its line numbers its own
    for name in loader.list_templates():
        if name.startswith(f"{TEMPLATE_FOLDER}/") and Path(name).suffix in (".html", ".txt"):
            source, _filename, _uptodate = loader.get_source(env, name)
            yield name, source


def email_template_keys(*, env: jinja2.Environment | None = None) -> set[str]:
    """Every translation key passed to ``t()`` as a literal in ``templates/emails/`` (of
    ``env``'s loader; the emails' engine by default). A key that is not a literal is refused
    (the check could not verify it): ValueError."""
    env = env or email_environment()
    keys: set[str] = set()
    for name, source in _email_template_sources(env):
        for call in env.parse(source, name=name).find_all(nodes.Call):
            if not (isinstance(call.node, nodes.Name) and call.node.name == "t"):
                continue
            first = call.args[0] if call.args else None
            if not (isinstance(first, nodes.Const) and isinstance(first.value, str)):
                raise ValueError(f"{name}:{call.lineno}: t() needs a literal key")
            keys.add(first.value)
    return keys
