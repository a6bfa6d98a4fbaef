"""Splitting a content line into name, parameters and value, and folding it again at 75
octets (RFC 5545 section 3.1), cheaply.

Why this exists: ``icalendar``'s ``Contentline.parts()`` walks the line one character at a time
in Python and builds the ``Parameters`` twice; profiled over 1,000 sabre-shaped REQUESTs
(``bench/sabre.py``), it was about 40 % of :func:`calendars.ical.parse.parse_itip` (2.3 s of
5.7 s under cProfile). With this split, ``parse_itip`` takes 0.93 ms of CPU per such message
instead of 1.57 ms (``time.process_time``, 1,000 messages, best of 5). This is a narrow,
deliberate exception to the house rule "iCalendar only through icalendar": the library stays
the reference. :func:`content_line_parts` answers only the lines whose parse is plain (below)
and gives every other line to the library's own ``parts()``; ``tests/ical/test_lines.py``
compares the two on every content line of the shared corpus, the hostile bodies, hand-written
edge cases and a seeded fuzz.

The plain line, and why each step of ``Contentline.raw_parts()`` (icalendar 7, non-strict)
then reduces to a ``str`` method:

- before the first ``:`` (the head) there is no ``"`` nor ``\\``: no quoted section and no
  escape, so the first ``:`` separates the value and the first ``;`` or ``:`` ends the name;
- the head has no ``%``, ``,``, ``^``, no control character and no white space but the space,
  and no space at its end nor next to a ``;`` or ``=``: the white-space stripping, the
  percent escaping, the list split, RFC 6868's ``^`` escapes and the check of unsafe
  characters (``validate_param_value``) all leave each parameter value as written;
- the colon is not the first character, the name is a token (``validate_token``: the same
  ``[\\w.-]+`` pattern), the parameter section is absent (no ``;`` in the head: no parameters)
  or not empty, and each parameter is ``token=value``.

The ``Parameters`` is made empty as ``copy`` makes one (``__new__``, without ``__init__``,
which has nothing to do for it). Parameter names are stored upper-cased, in the order of their
first appearance, the last value winning, as ``CaselessDict`` does (``str.upper`` gives the
same key twice applied). The value is unescaped by the library's own ``unescape_backslash``.
Anything else (a quoted value, a list, an escape, a missing ``=``, an invalid name, a strict
line) goes to ``line.parts()``, which also raises its ``ValueError`` for every malformed line.

Folding (:func:`fold_line`): ``Contentline.to_ical()`` folds with ``_foldline``, which walks the
line one character at a time, encoding each to count its octets. It was the hottest function
of the web process (about 15 % of its CPU in a profile of 2,000 callbacks): the attachment
folds about 7 of a sabre/dav VEVENT's lines this way (``attachment._sender_lines``). For an
ASCII line one character is one octet, so the same chunks are slices: ``_foldline`` ends a
chunk before it reaches 75 octets (room for the space that starts the next physical line), so
each chunk is 74 characters, one fewer when its last character would be a ``\\`` or ``^``
(icalendar moves the start of a TEXT or RFC 6868 escape to the next chunk, its issue 1501).
A line with any other character is folded by ``to_ical()`` itself. ``tests/ical/test_lines.py``
compares the two on every content line of the corpus and of the hostile bodies, on every
length around the fold points with escapes at each boundary, and on a seeded fuzz. With it,
``_sender_lines`` costs 0.039 ms of CPU per sabre/dav VEVENT instead of 0.104 ms (2,000
VEVENTs, best of 5). :func:`component_ical` is ``to_ical()`` with that folding. With both
and the stored form's fast path, ``prepared_dump`` takes 0.32 ms per sabre-shaped REQUEST
instead of 0.41-0.44 ms (``bench/parse.py``, 2,000 messages, back to back, best of 3).

Unfolding (:func:`content_lines_read`): ``Contentlines.from_ical`` unfolds with a regular
expression (``UFOLD``) whose look-behinds run at every line break, to handle bodies that mix
CRLF, LF and empty lines. When every line break is CRLF, or every one LF, and no line is
empty, a fold is exactly a line break followed by a space or a tab and ``str.replace`` gives
the same text; any other body is unfolded by the library. Reading a sabre/dav REQUEST's
content lines takes 0.061 ms of CPU instead of 0.122 ms (2,000 bodies, the two interleaved
in one process, best of 7). ``tests/ical/test_lines.py`` compares the two on every corpus
body (also with LF, CR and blank lines), the hostile bodies and 20,000 seeded random texts.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

from icalendar.parser.content_line import NEWLINE, Contentline, Contentlines
from icalendar.parser.parameter import Parameters
from icalendar.parser.property import unescape_backslash
from icalendar.parser.string import NAME as _TOKEN

# A head with one of these is not plain: quoting, escapes, lists, RFC 6868, percent escapes,
# characters validate_param_value refuses, and white space other than the space.
_NOT_PLAIN = re.compile(r'["\\,^%\x00-\x1f\x7f]|[^\S ]')
# Spaces the non-strict parser would strip (around ";" and "=").
_STRIPPED_SPACES = ("; ", " ;", "= ", " =")

_set = OrderedDict.__setitem__  # Parameters' own storage, the key already upper-cased
# An empty Parameters without Parameters.__init__ (its default_ keywords and CaselessDict's
# key loop have nothing to do for an empty one): 0.19 us instead of 1.6 us, for each of a
# message's content lines. copy and pickle make their Parameters so too.
_empty_parameters = OrderedDict.__new__

_FOLD_CHARS = 74  # RFC 5545 3.1's 75 octets, less the space that starts a continuation line
_FOLD = "\r\n "


def content_line_parts(line: Contentline) -> tuple[str, Parameters, str]:
    """``line.parts()``: the name as written, the ``Parameters`` (names upper-cased, values
    ``str`` or ``list``) and the value with its backslash escapes undone (RFC 5545 3.3.11).

    Raises ``ValueError`` exactly when ``line.parts()`` does (it is then the one raising).
    """
    colon = line.find(":")
    if colon <= 0 or getattr(line, "strict", False):  # set in __new__, unseen by mypy
        return line.parts()
    head = line[:colon]
    if _NOT_PLAIN.search(head) is not None:
        return line.parts()
    if " " in head and (head[-1] == " " or any(s in head for s in _STRIPPED_SPACES)):
        return line.parts()
    semicolon = head.find(";")
    if semicolon < 0:
        name = head
        params = _empty_parameters(Parameters)
    else:
        name = head[:semicolon]
        section = head[semicolon + 1 :]
        if not section:
            return line.parts()  # "NAME;:value": the library refuses it
        params = _empty_parameters(Parameters)
        for parameter in section.split(";"):
            key, equals, value = parameter.partition("=")
            if not equals or _TOKEN.fullmatch(key) is None:
                return line.parts()
            _set(params, key.upper(), value)
    if _TOKEN.fullmatch(name) is None:
        return line.parts()
    value = line[colon + 1 :]
    if "\\" in value:
        value = unescape_backslash(value)
    return name, params, value


def fold_line(line: Contentline) -> str:
    """``line.to_ical()``, decoded: the line folded as ``icalendar`` folds it (RFC 5545
    section 3.1: physical lines of at most 75 octets, each continuation starting with a space,
    joined by CRLF), never splitting a ``\\`` or ``^`` escape from its next character."""
    length = len(line)
    if length <= _FOLD_CHARS and (line.isascii() or len(line.encode()) <= _FOLD_CHARS):
        return str(line)  # _foldline folds only when a chunk would reach 75 octets
    if not line.isascii():
        return bytes(line.to_ical()).decode("utf-8")
    chunks = []
    start = 0
    while length - start > _FOLD_CHARS:
        stop = start + _FOLD_CHARS
        if line[stop - 1] in "\\^":
            stop -= 1
        chunks.append(line[start:stop])
        start = stop
    chunks.append(line[start:])
    return _FOLD.join(chunks)


def component_ical(component: Any) -> bytes:
    """``component.to_ical()``: its content lines (``Component.content_lines``) folded by
    :func:`fold_line`, each ended by CRLF, UTF-8 (``Contentlines.to_ical``)."""
    lines = component.content_lines()
    return ("\r\n".join([fold_line(line) for line in lines if line]) + "\r\n").encode("utf-8")


def content_lines_read(text: str) -> Contentlines:
    """``Contentlines.from_ical(text)``: the text unfolded (RFC 5545 section 3.1), split into
    content lines at CRLF or LF, empty ones left out, and an empty line appended."""
    unfolded = _unfolded(text)
    if unfolded is None:
        return Contentlines.from_ical(text)
    lines = Contentlines(Contentline(line) for line in NEWLINE.split(unfolded) if line)
    lines.append("")  # type: ignore[arg-type]  # as from_ical does: the CRLF of the last line
    return lines


def _unfolded(text: str) -> str | None:
    """``UFOLD.sub("", text)`` when every line break of the text is CRLF, or every one LF,
    and no line is empty; None otherwise (the caller asks the library). Then a fold is
    exactly a line break followed by a space or a tab, and removing one never makes another:
    that would take a lone CR or LF, or two line breaks in a row."""
    newlines = text.count("\n")
    if newlines == 0:
        return text  # every fold starts with a LF
    crlfs = text.count("\r\n")
    if crlfs == newlines and text.count("\r") == crlfs and "\r\n\r\n" not in text:
        return text.replace("\r\n ", "").replace("\r\n\t", "")
    if crlfs == 0 and "\r" not in text and "\n\n" not in text:
        return text.replace("\n ", "").replace("\n\t", "")
    return None
