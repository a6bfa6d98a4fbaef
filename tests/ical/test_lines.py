"""calendars.ical.lines.content_line_parts gives exactly what icalendar's Contentline.parts()
gives, or raises ValueError exactly when it does, and calendars.ical.lines.fold_line gives
exactly what Contentline.to_ical() gives: on every content line of the shared corpus and of
the hostile bodies, on hand-written edges and on a seeded fuzz."""

from __future__ import annotations

import random
from typing import Any

import pytest
from icalendar.parser.content_line import Contentline, Contentlines
from icalendar.parser.parameter import Parameters

from bench.sabre import sabre_request
from calendars.ical import ICalendarError, Method, budgets, build_attachment, parse_itip
from calendars.ical.lines import (
    _unfolded,
    component_ical,
    content_line_parts,
    content_lines_read,
    fold_line,
)
from tests.hostile import generated_bodies, hostile_files
from tests.invitations.corpus import corpus_bodies


def _outcome(split: Any, line: Contentline) -> tuple[str, Any]:
    """("parts", (name, [(key, type, value)...], value)) or ("error", message)."""
    try:
        name, params, value = split(line)
    except ValueError as exc:
        return "error", str(exc)
    assert type(params) is Parameters
    assert type(name) is str and type(value) is str
    items = [(key, type(item).__name__, item) for key, item in params.items()]
    return "parts", (name, items, value)


def _mismatch(text: str) -> str | None:
    """None when both agree on the line, else what each gave."""
    line = Contentline(text)
    expected = _outcome(Contentline.parts, line)
    got = _outcome(content_line_parts, line)
    if got == expected:
        return None
    return f"{text[:200]!r}: library {expected!r:.300}, ours {got!r:.300}"


def _content_lines(body: bytes) -> list[str]:
    """The unfolded content lines of a body, as the bounded parser gets them."""
    text = body.decode("utf-8", errors="replace").replace("\x00", "")
    return [str(line) for line in Contentlines.from_ical(text) if line]


def _corpus() -> list[tuple[str, bytes]]:
    bodies = corpus_bodies()
    if not bodies:
        pytest.skip("the shared corpus is absent (../shared/corpus/ics): nothing to compare")
    return bodies


def _sabre_lines() -> list[str]:
    return _content_lines(sabre_request(7, recipient=1)[0])


def test_every_corpus_line_is_split_as_the_library_splits_it_when_read() -> None:
    lines = {line for _, body in _corpus() for line in _content_lines(body)}
    assert len(lines) > 5000  # the corpus, not an empty folder
    mismatches = [m for m in map(_mismatch, sorted(lines)) if m]
    assert mismatches == []


def test_every_hostile_line_is_split_as_the_library_splits_it_when_read() -> None:
    bodies = [path.read_bytes() for path in hostile_files()] + list(generated_bodies().values())
    lines = {line for body in bodies for line in _content_lines(body)}
    assert len(lines) > 50
    mismatches = [m for m in map(_mismatch, sorted(lines)) if m]
    assert mismatches == []


EDGES = [
    "NAME:",
    ":value",
    "NAME;:x",
    "NAME;A=b:c",
    "name;a=B:c",
    "X-Y;a=1;A=2:v",
    "NAME;A=:c",
    "NAME;A:c",
    "NAME;=b:c",
    "NAME;A=b=c:d",
    "X-A;B=c;B=d:e",
    "X-A;B=c;C=x;B=d:e",
    "NAME;;A=b:c",
    "NAME;A=b;;C=d:e",
    "NAME;A=b;:c",
    ";;",
    ";A=b:c",
    "NAME",
    "NAME;A=b",
    "NAME;A=b;C=d",
    "NAMÉ:valeur",
    "ÜBER;SCHLÜSSEL=Wert:wert",
    "X-ß;ß=ß:ß",
    "SUMMARY:日本語の会議",
    "ATTENDEE;CN=Chloé Petit:mailto:chloe@example.com",
    "ATTENDEE;CN=Bob Durand;PARTSTAT=NEEDS-ACTION:mailto:bob@example.net",
    "ATTENDEE;CN=Bob  Durand:mailto:bob@example.net",
    "ATTENDEE;CN=Bob :mailto:bob@example.net",
    "ATTENDEE;CN= Bob:mailto:bob@example.net",
    "ATTENDEE; CN=Bob:mailto:bob@example.net",
    "ATTENDEE ;CN=Bob:mailto:bob@example.net",
    "ATTENDEE;CN =Bob:mailto:bob@example.net",
    "ATTENDEE;CN=Bob ;ROLE=CHAIR:mailto:bob@example.net",
    "ATTENDEE;CN=Bob; ROLE=CHAIR:mailto:bob@example.net",
    "ATTENDEE;CN=Bob\t;ROLE=CHAIR:mailto:bob@example.net",
    "ATTENDEE;CN=Bob;\tROLE=CHAIR:mailto:bob@example.net",
    "ATTENDEE\t;CN=Bob:x",
    " ATTENDEE;CN=Bob:x",
    "ATTENDEE ;CN=Bob :x",
    "DT START:20260101T000000",
    "SUMMARY :x",
    "SUMMARY\t:x",
    "X-NBSP;A=a\xa0b:x",
    "X-NBSP;A=a\xa0:x",
    "X-NBSP\xa0;A=a:x",
    "X-NEL;A=a\x85:x",
    "X-CTRL;A=a\x01b:x",
    "X-CTRL;A=a\x1fb:x",
    "X-CTRL;A=a\x7fb:x",
    "X-CTRL;A=a\x0bb:x",
    "X-URL;A=http%2C:x",
    "URL:https://example.org/a%2Cb%3A",
    "DESCRIPTION:a%2Cb%5C\\,c",
    "X-CARET;CN=a^nb^^c^'d^x:e",
    "X-CARET;CN=a^:x",
    "X-CARET:^n^^",
    'ATTENDEE;CN="Doe, John":mailto:j@example.org',
    'ATTENDEE;CN="a:b;c":mailto:j@example.org',
    'X-Q;A="x":y',
    'X-Q;A="x:y',
    'X-Q;A=x"y":z',
    'ATTENDEE;DELEGATED-TO="mailto:a@x","mailto:b@x":mailto:c@x',
    "X-L;A=a,b:c",
    "X-L;A=a,:c",
    "X-L;A=,:c",
    "NAME\\:x",
    "NAME;A=b\\:c:d",
    "NAME;A=b\\,c:d",
    "NAME;A=b\\\\:d",
    "NAME\\;A=b:c",
    "DESCRIPTION:a\\nb\\Nc\\,d\\;e\\\\f\\:g\\x",
    "DESCRIPTION:trailing\\",
    "no colon at all",
    "NOCOLON;A=b",
    "X.DOTTED;a.b=c:d",
    "X-_UNDER;_=_:_",
    "BEGIN:VEVENT",
    "END:VEVENT",
    "DTSTART;TZID=Europe/Paris:20260101T090000",
    "DTSTART;TZID=:20260101T090000",
    "DTSTART;VALUE=DATE:20260101",
    "DESCRIPTION:" + "long value, with commas\\, escapes\\n and: colons " * 4000,
    "X-P" + ";A=1" * 500 + ":v",
    "X-P;" + "A" * 5000 + "=b:c",
]


@pytest.mark.parametrize("text", EDGES, ids=lambda text: repr(text[:40]))
def test_edge_line_is_split_as_the_library_splits_it_when_written(text: str) -> None:
    assert _mismatch(text) is None


def test_edges_cover_both_answers_when_read() -> None:
    outcomes = {_outcome(Contentline.parts, Contentline(text))[0] for text in EDGES}
    assert outcomes == {"parts", "error"}


class _LibraryRefused(Contentline):
    """A content line whose library split must not be asked for."""

    __slots__ = ()

    def parts(self) -> tuple[str, Parameters, str]:
        raise AssertionError(f"the library was asked to split {self[:60]!r}")


def test_plain_line_is_split_without_the_library_when_read() -> None:
    # The lines of a sabre message (spaces inside CN included) take the fast path.
    for text in _sabre_lines():
        name, params, value = content_line_parts(_LibraryRefused(text))
        assert (name, params, value) == Contentline(text).parts()


def test_quoted_line_is_split_by_the_library_when_read() -> None:
    with pytest.raises(AssertionError, match="the library was asked"):
        content_line_parts(_LibraryRefused('ATTENDEE;CN="Doe, John":mailto:j@example.org'))


def test_strict_line_is_split_by_the_library_when_read() -> None:
    line = Contentline("name;a=B:c", strict=True)
    assert content_line_parts(line) == line.parts()
    assert content_line_parts(line)[1]["A"] == "B"  # strict upper-cases unquoted values


_FUZZ_ALPHABET = ";:=,\\^% \tAa"
FUZZ_CASES = 4000


def _mutate(text: str, rng: random.Random) -> str:
    for _ in range(rng.randint(1, 4)):
        position = rng.randint(0, len(text))
        operation = rng.randrange(3)
        if operation == 0:
            text = text[:position] + rng.choice(_FUZZ_ALPHABET) + text[position:]
        elif operation == 1:
            text = text[:position] + text[position + 1 :]
        else:
            text = text[:position] + rng.choice(_FUZZ_ALPHABET) + text[position + 1 :]
    return text


def test_mutated_line_is_split_as_the_library_splits_it_when_fuzzed() -> None:
    seeds = sorted(
        {line for _, body in corpus_bodies() for line in _content_lines(body) if len(line) < 400}
        | set(_sabre_lines())
    )
    rng = random.Random(1414)
    mutated = [_mutate(rng.choice(seeds), rng) for _ in range(FUZZ_CASES)]
    mismatches = [m for m in map(_mismatch, mutated) if m]
    assert mismatches == []
    answers = {_outcome(Contentline.parts, Contentline(text))[0] for text in mutated}
    assert answers == {"parts", "error"}  # the fuzz reaches both sides


def _parse(body: bytes) -> tuple[str, Any]:
    try:
        message = parse_itip(body)
    except ICalendarError as exc:
        return "error", str(exc)
    tzids = [event.tzid for event in message.events]
    return "message", (message, tzids, message._calendar.to_ical())


def test_every_corpus_message_parses_as_with_the_library_split_when_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bodies = [body for _, body in _corpus()] + [sabre_request(3, recipient=1)[0]]
    ours = [_parse(body) for body in bodies]
    # The reference: the one statement this change touched given back the library's split.
    monkeypatch.setattr(budgets, "content_line_parts", Contentline.parts)
    library = [_parse(body) for body in bodies]
    assert ours == library
    assert sum(kind == "message" for kind, _ in ours) > 100


# --- Folding ----------------------------------------------------------------------------------


def _fold_mismatch(text: str) -> str | None:
    """None when fold_line gives what the library's to_ical gives, else both."""
    line = Contentline(text)
    expected = line.to_ical().decode("utf-8")
    got = fold_line(line)
    if type(got) is str and got == expected:
        return None
    return f"{text[:200]!r}: library {expected!r:.300}, ours {got!r:.300}"


def _hostile_lines() -> set[str]:
    bodies = [path.read_bytes() for path in hostile_files()] + list(generated_bodies().values())
    return {line for body in bodies for line in _content_lines(body)}


def test_every_corpus_line_is_folded_as_the_library_folds_it_when_written() -> None:
    lines = {line for _, body in _corpus() for line in _content_lines(body)}
    assert sum(len(line) > 75 and line.isascii() for line in lines) > 300  # folds happen
    mismatches = [m for m in map(_fold_mismatch, sorted(lines)) if m]
    assert mismatches == []


def test_every_hostile_and_sabre_line_is_folded_as_the_library_folds_it_when_written() -> None:
    lines = _hostile_lines() | set(_sabre_lines())
    assert sum(len(line) > 75 for line in lines) > 10
    mismatches = [m for m in map(_fold_mismatch, sorted(lines)) if m]
    assert mismatches == []


def _fold_edges() -> list[str]:
    """Every length around the first two fold points (74 and 148 characters), each with an
    escape character at every position near a boundary, and a few non-ASCII ones."""
    edges = []
    for length in [*range(1, 5), *range(70, 80), *range(144, 153), *range(218, 226), 400]:
        base = "X-F:" + "a" * (length - 4) if length > 4 else "X:a"[:length]
        edges.append(base)
        for position in [*range(68, 80), *range(141, 153), *range(214, 226)]:
            if position < len(base):
                for escape in ("\\", "^", "\\\\", "^^", "\\n"):
                    edges.append((base[:position] + escape + base[position:])[: max(length, 4)])
    edges += [
        "DESCRIPTION:" + "\\" * 200,
        "DESCRIPTION:" + "^" * 200,
        "DESCRIPTION:" + "\\^" * 100,
        "DESCRIPTION:" + "é" * 100,
        "DESCRIPTION:" + "a" * 73 + "é" + "a" * 80,
        "DESCRIPTION:" + "😀" * 40,
        "X-CR:" + "a\rb" * 40,
    ]
    return edges


def test_edge_lines_are_folded_as_the_library_folds_them_when_written() -> None:
    edges = _fold_edges()
    assert len(edges) > 2000
    mismatches = [m for m in map(_fold_mismatch, edges) if m]
    assert mismatches == []


def test_random_lines_are_folded_as_the_library_folds_them_when_fuzzed() -> None:
    rng = random.Random(1414)
    alphabet = "ab;:,=\\^ \t\r" + "é€😀"
    lines = []
    for _ in range(FUZZ_CASES):
        characters = alphabet if rng.random() < 0.2 else alphabet[:-3]  # mostly ASCII
        lines.append("".join(rng.choice(characters) for _ in range(rng.randint(1, 400))))
    mismatches = [m for m in map(_fold_mismatch, lines) if m]
    assert mismatches == []
    assert sum(line.isascii() for line in lines) > FUZZ_CASES // 2


class _LibraryFoldRefused(Contentline):
    """A content line whose library folding must not be asked for."""

    __slots__ = ()

    def to_ical(self) -> bytes:
        raise AssertionError(f"the library was asked to fold {self[:60]!r}")


def test_ascii_line_is_folded_without_the_library_when_written() -> None:
    text = "DESCRIPTION:" + "an agenda\\, with escapes\\n " * 12
    folded = fold_line(_LibraryFoldRefused(text))
    assert folded == Contentline(text).to_ical().decode()
    assert folded.count("\r\n ") == len(text) // 74


def test_non_ascii_line_is_folded_by_the_library_when_written() -> None:
    with pytest.raises(AssertionError, match="the library was asked"):
        fold_line(_LibraryFoldRefused("SUMMARY:" + "é" * 80))


def test_parameters_of_a_plain_line_are_those_the_library_makes_when_read() -> None:
    # The fast path makes its Parameters without __init__; they must be the library's own.
    for text in ["SUMMARY:x", "ATTENDEE;CN=Bob;ROLE=CHAIR:mailto:b@example.org"]:
        ours = content_line_parts(_LibraryRefused(text))[1]
        library = Contentline(text).parts()[1]
        assert type(ours) is Parameters and vars(ours) == vars(library) == {}
        assert ours == library and ours.to_ical() == library.to_ical()
        ours["rsvp"] = "TRUE"  # still a case-insensitive dict
        assert ours["RSVP"] == "TRUE" and list(ours)[-1] == "RSVP"


def _components(body: bytes) -> list[Any]:
    """Every component of every calendar the body holds (empty when it is not readable)."""
    try:
        calendars = budgets.calendars_read(body.decode("utf-8", errors="replace"))
    except (ValueError, ICalendarError):
        return []
    return [part for calendar in calendars for part in calendar.walk()]


def test_every_component_is_serialized_as_the_library_serializes_it_when_written() -> None:
    bodies = [body for _, body in _corpus()] + [sabre_request(3, recipient=1)[0]]
    components = [part for body in bodies for part in _components(body)]
    assert len(components) > 1000
    mismatches = [part.name for part in components if component_ical(part) != bytes(part.to_ical())]
    assert mismatches == []


def test_attachment_head_is_serialized_as_the_library_serializes_it_when_built() -> None:
    # The calendar's own lines (METHOD, PRODID...) of a built attachment, non-ASCII ones too.
    message = parse_itip(sabre_request(3, recipient=1)[0])
    calendar = budgets.calendars_read(
        build_attachment(message, itip_enabled=True, method=Method.REQUEST).decode()
    )[0]
    calendar.add("X-WR-CALNAME", "Réunions d'équipe, " * 6)
    assert component_ical(calendar) == bytes(calendar.to_ical())


# --- Unfolding --------------------------------------------------------------------------------


def _read_mismatch(text: str) -> str | None:
    """None when content_lines_read gives what Contentlines.from_ical gives, else both."""
    expected = Contentlines.from_ical(text)
    got = content_lines_read(text)
    same = type(got) is Contentlines and [(type(x), x) for x in got] == [
        (type(x), x) for x in expected
    ]
    return None if same else f"{text[:200]!r}: library {expected!r:.300}, ours {got!r:.300}"


def _texts(bodies: list[bytes]) -> list[str]:
    texts = [body.decode("utf-8", errors="replace") for body in bodies]
    # Each body also with LF and with CR line ends, and with a blank line in it.
    return texts + [
        variant
        for text in texts
        for variant in (
            text.replace("\r\n", "\n"),
            text.replace("\r\n", "\r"),
            text.replace("\r\n", "\r\n\r\n", 3),
        )
    ]


def test_every_corpus_body_is_unfolded_as_the_library_unfolds_it_when_read() -> None:
    texts = _texts([body for _, body in _corpus()])
    assert sum(" " in t and "\n " in t for t in texts) > 100  # folded bodies among them
    mismatches = [m for m in map(_read_mismatch, texts) if m]
    assert mismatches == []


def test_every_hostile_body_is_unfolded_as_the_library_unfolds_it_when_read() -> None:
    bodies = [path.read_bytes() for path in hostile_files()] + list(generated_bodies().values())
    # As the parser gets them: a body over its size budget is refused before it is split.
    texts = [body.decode("utf-8", errors="replace") for body in bodies]
    texts = [t for t in texts if len(t) <= budgets.LIMITS.max_bytes]
    assert len(texts) > 10
    mismatches = [m for m in map(_read_mismatch, texts) if m]
    assert mismatches == []


def test_random_texts_are_unfolded_as_the_library_unfolds_them_when_fuzzed() -> None:
    rng = random.Random(1414)
    pieces = ["\r\n", "\n", "\r", " ", "\t", "a", ":", "\r\n ", "\n ", "\r\n\t", "\n\t"]
    texts = []
    for _ in range(FUZZ_CASES * 5):
        crlf = rng.random() < 0.5  # mostly one kind of line end, as senders write them
        usable = pieces if rng.random() < 0.3 else [p for p in pieces if ("\r" in p) == crlf]
        texts.append("".join(rng.choice(usable) for _ in range(rng.randint(0, 30))))
    mismatches = [m for m in map(_read_mismatch, texts) if m]
    assert mismatches == []
    assert sum(_unfolded(text) is not None for text in texts) > FUZZ_CASES  # the fast path


def test_body_with_one_kind_of_line_end_is_unfolded_without_the_library_when_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refused(text: str) -> Contentlines:
        raise AssertionError("the library was asked to unfold")

    with monkeypatch.context() as patch:
        patch.setattr(Contentlines, "from_ical", refused)
        body = sabre_request(3, recipient=1)[0].decode()
        assert content_lines_read(body) == content_lines_read(body.replace("\r\n", "\n"))
        with pytest.raises(AssertionError, match="the library was asked"):
            content_lines_read(body.replace("\r\n", "\n", 1))
