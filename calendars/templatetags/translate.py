"""``{% t "key" name=value %}``: a string from translations.json in the context's language.

The language is the template context's ``language`` variable. Placeholders in the string are
filled from the keyword arguments; the result is escaped like any variable unless the
template marks it safe.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.template.base import FilterExpression, Parser, Token
from django.utils.html import conditional_escape

from calendars.translations import translate

register = template.Library()


class TranslateNode(template.Node):
    def __init__(self, key: str, params: dict[str, FilterExpression], as_var: str | None):
        self.key = key
        self.params = params
        self.as_var = as_var

    def render(self, context: template.Context) -> str:
        values = {name: expr.resolve(context) for name, expr in self.params.items()}
        text = translate(self.key, context.get("language"), **values)
        if self.as_var:
            context[self.as_var] = text
            return ""
        return str(conditional_escape(text)) if context.autoescape else text


@register.tag(name="t")
def do_translate(parser: Parser, token: Token) -> TranslateNode:
    bits = token.split_contents()
    if len(bits) < 2 or bits[1][0] not in "\"'" or bits[1][-1] != bits[1][0]:
        raise template.TemplateSyntaxError('usage: {% t "key" [name=value ...] [as var] %}')
    key = bits[1][1:-1]
    rest = bits[2:]
    as_var = None
    if len(rest) >= 2 and rest[-2] == "as":
        as_var = rest[-1]
        rest = rest[:-2]
    params: dict[str, Any] = {}
    for bit in rest:
        name, sep, value = bit.partition("=")
        if not sep:
            raise template.TemplateSyntaxError(f"{{% t %}} argument {bit!r} must be name=value")
        params[name] = parser.compile_filter(value)
    return TranslateNode(key, params, as_var)
