"""The strings of every email and page, from ``translations.json``.

The file maps each language code to a flat mapping of keys to strings::

    {"en": {"rsvp.accept": "Accept", ...}, "fr": {...}, "de": {...}, "nl": {...}}

It is loaded once per process (``TRANSLATIONS_JSON_PATH``, default the bundled file) and
validated by the system checks in :mod:`calendars.checks`. Strings use ``str.format``
placeholders such as ``{summary}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from django.conf import settings

SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "fr", "de", "nl")
FALLBACK_LANGUAGE = "en"

# Keys used from Python code rather than from templates (templates are scanned for ``{% t %}``).
CODE_KEYS: set[str] = set()


class TranslationsError(Exception):
    """The translations file is missing, unreadable or malformed."""


class TranslationsUnreadable(TranslationsError):
    """The translations file is missing or cannot be read."""


class TranslationsInvalid(TranslationsError):
    """The translations file is not UTF-8 JSON of the expected shape."""


def register_keys(keys: Iterable[str]) -> None:
    """Declare keys that Python code looks up, so the system check verifies them."""
    CODE_KEYS.update(keys)


def load_file(path: Path) -> dict[str, dict[str, str]]:
    """Read and shape-check one translations file. Raises :class:`TranslationsError`."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise TranslationsUnreadable(f"{path} does not exist") from exc
    except OSError as exc:
        raise TranslationsUnreadable(f"{path} cannot be read ({exc.strerror})") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TranslationsInvalid(f"{path} is not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(strings, dict) and all(isinstance(v, str) for v in strings.values())
        for strings in data.values()
    ):
        raise TranslationsInvalid(
            f"{path} must map each language code to an object of strings "
            '({"en": {"key": "text"}, ...})'
        )
    return data


@lru_cache(maxsize=4)
def _catalog_for(path: str) -> dict[str, dict[str, str]]:
    return load_file(Path(path))


def catalog() -> Mapping[str, Mapping[str, str]]:
    return _catalog_for(str(settings.TRANSLATIONS_JSON_PATH))


def resolve_language(language: str | None) -> str:
    """The supported language closest to ``language`` (``fr-CA`` gives ``fr``), else English."""
    if language:
        base = language.replace("_", "-").split("-")[0].lower()
        if base in catalog():
            return base
    return FALLBACK_LANGUAGE


def translate(key: str, language: str | None, **params: object) -> str:
    """The string for ``key`` in ``language`` (English when missing), formatted with params."""
    text = strings_for(language).get(key) or key
    return text.format(**params) if params else text


def strings_for(language: str | None) -> Mapping[str, str]:
    """Every string of ``language`` as :func:`translate` resolves it (a key empty or missing in
    that language has its English string), computed once per language and file: what a
    renderer looks up dozens of times per email."""
    strings = catalog()
    lang = resolve_language(language)
    cached = _TABLES.get((id(strings), lang))
    if cached is not None and cached[0] is strings:
        return cached[1]
    english = strings.get(FALLBACK_LANGUAGE, {})
    table = {key: text for key, text in english.items() if text}
    table.update((key, text) for key, text in strings.get(lang, {}).items() if text)
    _TABLES[(id(strings), lang)] = (strings, MappingProxyType(table))
    return _TABLES[(id(strings), lang)][1]


# (id of the catalog, language) -> (that catalog, its table): a catalog read again (another
# TRANSLATIONS_JSON_PATH, or the file's cache cleared) gets tables of its own.
_TABLES: dict[tuple[int, str], tuple[Mapping[str, Mapping[str, str]], Mapping[str, str]]] = {}
